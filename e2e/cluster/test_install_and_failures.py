"""Install, failure modes and uninstall on a real cluster (docs/e2e.md), in this order:
- `kubectl apply -k manifests/default`: every add-on pod Ready with no manual step (the
  certs Job completed, the webhook's caBundle set, the node labelled vcl.io/vpp=ready),
  both webhook replicas running on a one-node cluster (preferred anti-affinity);
- `kubectl vcl status -n NS` works as a kubectl plugin, run through kubectl;
- VPP gone (its DaemonSet kept off the node): the agent is not Ready, says why, the node
  label goes, and vcl-status reports the pod unhealthy with the reason; all back after;
- `kubectl delete -k manifests/default` after the documented steps: no webhook
  configuration, no node label, no add-on objects, no per-pod host directories left.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client

from e2e.cluster.support import ADDON_NAMESPACE, REPO, addon_ready, kubectl, start, vcl_status

NODE_LABEL = "vcl.io/vpp"


def node_labels(api: Any) -> dict[str, str]:
    (node,) = client.CoreV1Api(api).list_node().items
    return dict(node.metadata.labels or {})


def test_install_makes_every_addon_pod_ready(installed: Any, wait_for: Callable[..., Any]) -> None:
    # (installed by the first test that needed it; an earlier test may have scaled parts)
    wait_for("every add-on pod Ready", lambda: addon_ready(installed))
    job = client.BatchV1Api(installed).read_namespaced_job("vcl-injector-certs", ADDON_NAMESPACE)
    assert job.status.succeeded == 1
    config = client.AdmissionregistrationV1Api(installed).read_mutating_webhook_configuration(
        "vcl-injector"
    )
    assert all(w.client_config.ca_bundle for w in config.webhooks)
    wait_for("the node label", lambda: node_labels(installed).get(NODE_LABEL) == "ready")
    webhook = (
        client.CoreV1Api(installed)
        .list_namespaced_pod(ADDON_NAMESPACE, label_selector="app.kubernetes.io/name=vcl-injector")
        .items
    )
    assert len([p for p in webhook if p.status.phase == "Running"]) == 2


def test_kubectl_plugin(installed: Any, namespace: str, wait_for: Callable[..., Any]) -> None:
    pod = start(
        installed, namespace, wait_for, "echo", ["python3", "/opt/e2e/echo.py", "serve", "7000"]
    )
    plugin = shutil.which("kubectl-vcl")
    assert plugin, "the kubectl-vcl entry point (pip install .)"
    out = subprocess.run(["kubectl", "vcl", "status", "-n", namespace, "-o", "json"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    rows = json.loads(out.stdout)
    assert [r["name"] for r in rows] == [pod.metadata.name], out.stderr


def test_vpp_gone_makes_the_agent_unready_and_is_reported(
    installed: Any, namespace: str, wait_for: Callable[..., Any]
) -> None:
    pod = start(
        installed, namespace, wait_for, "echo", ["python3", "/opt/e2e/echo.py", "serve", "7000"]
    )
    apps = client.AppsV1Api(installed)
    keep_off = {"spec": {"template": {"spec": {"nodeSelector": {"vcl.io/e2e-nowhere": "x"}}}}}
    apps.patch_namespaced_daemon_set("vcl-vpp", ADDON_NAMESPACE, keep_off)
    try:
        wait_for("the node label removed", lambda: NODE_LABEL not in node_labels(installed))

        def agent_unready() -> bool:
            ds = apps.read_namespaced_daemon_set("vcl-agent", ADDON_NAMESPACE)
            return (ds.status.number_ready or 0) == 0

        wait_for("the agent not Ready", agent_unready, timeout=60)
        code, rows = vcl_status(pod.metadata.name, "-n", namespace)
        assert code == 1 and any("VPP" in w for w in rows[0]["warnings"]), rows
        events = client.CoreV1Api(installed).list_namespaced_event(
            "default", field_selector="involvedObject.kind=Node"
        )
        assert any(e.reason == "VppUnreachable" and e.source.component == "vcl-agent"
                   for e in events.items)  # fmt: skip
    finally:
        undo = {"spec": {"template": {"spec": {"nodeSelector": {"vcl.io/e2e-nowhere": None}}}}}
        apps.patch_namespaced_daemon_set("vcl-vpp", ADDON_NAMESPACE, undo)
        wait_for("the add-on Ready again", lambda: addon_ready(installed), timeout=240)
        wait_for("the node label back", lambda: node_labels(installed).get(NODE_LABEL) == "ready")


def test_z_uninstall_leaves_nothing(installed: Any, wait_for: Callable[..., Any]) -> None:
    """Runs last (docs/uninstall.md): stop injecting, recreate injected pods (none left by
    the tests above), delete the add-on."""
    if os.environ.get("VCL_E2E_KEEP_INSTALLED") == "1":
        return  # a developer asked to keep the add-on (the test still ran everything else)

    # docs/uninstall.md, step 2: no injected pod left (the tests' namespaces are going).
    def injected_pods() -> list[str]:
        pods = client.CoreV1Api(installed).list_pod_for_all_namespaces().items
        return [p.metadata.name for p in pods
                if "vcl.io/status" in (p.metadata.annotations or {})]  # fmt: skip

    wait_for("no injected pod left", lambda: not injected_pods(), timeout=300)
    # Step 3: the agents first, while their RBAC still lets them take the node label off
    # (and, with no pod registered, clear their host state), then the rest.
    kubectl("delete", "-n", ADDON_NAMESPACE, "daemonset", "vcl-agent", "--wait=true", timeout=300)
    wait_for("the agent pods gone", lambda: not client.CoreV1Api(installed).list_namespaced_pod(
        ADDON_NAMESPACE, label_selector="app.kubernetes.io/name=vcl-agent").items)  # fmt: skip
    kubectl("delete", "-k", str(REPO / "manifests" / "default"), "--ignore-not-found",
            "--wait=true", timeout=600)  # fmt: skip
    core = client.CoreV1Api(installed)

    def namespace_gone() -> bool:
        return ADDON_NAMESPACE not in {n.metadata.name for n in core.list_namespace().items}

    wait_for("vcl-system gone", namespace_gone, timeout=300)
    left = kubectl("get", "mutatingwebhookconfiguration,clusterrole,clusterrolebinding",
                   "-l", "app.kubernetes.io/part-of=vcl-injector", "-o", "name")  # fmt: skip
    assert left.strip() == ""
    wait_for("the node label gone", lambda: NODE_LABEL not in node_labels(installed), timeout=60)
    # Where the suite runs on the node itself (a one-node lab), its host root too.
    root = Path("/var/run/vcl")
    assert not (root / "pods").exists() and not (root / "vpp-started").exists()
