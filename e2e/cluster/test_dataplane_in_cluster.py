"""An injected pod on a real cluster runs on VPP, every link checked (docs/e2e.md):
- a real server (nginx, on a minbase image without libunwind) is injected, vcl-init copies
  the runtime and waits, the agent registers it (annotation, readiness condition), it is
  Running and Ready through its HTTP probe (kubelet -> pod IP, kernel side), exec and
  logs work, and its process is attached to VPP (VPP lists the container's app and its
  listener; vcl-status counts it, LDP loaded, no problem);
- traffic: an injected client exchanges 20 MB (20,000 echoed 1 KiB messages) with an injected echo server by its pod IP,
  and VPP carries it (the session is in VPP while it runs); two replicas on one port each
  reached through VPP at their own IP; a plain pod, a Service and the API server reached
  over the kernel; an address that is not the server's never reaching it; a pod behind a
  NetworkPolicy reached over the kernel only, and through VPP again once it is removed;
  vcl-status's per-stack connection counts and VPP peers confirming each path;
- a static binary (CGO_ENABLED=0) is flagged by vcl-status: "preload did not take";
- a deleted pod's VPP namespace, socket and host directory are gone within 10 s;
- a VPP restart (its pod deleted) is detected, the injected pods are evicted and their
  replacements registered, and VPP holds exactly the live pods' namespaces.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client

from e2e.cluster.support import (
    HeldExchange,
    addon_pod,
    agent_exec,
    deployment,
    kubectl,
    ready_pods,
    start,
    vcl_status,
    vpp_sessions_to,
    vppctl,
)
from injector.agent.attachment import is_containers_app
from vppctl_py.cli_text import parse_apps


def apps_of(api: Any, container: str, uid: str) -> list[str]:
    """The VPP apps of a pod's container, read as the agent reads `show app` (names cut
    at 20 characters; the namespace column tells the pod)."""
    return [
        a.name for a in parse_apps(vppctl(api, "show app"))
        if is_containers_app(a.name, container, uid) and a.ns_id == f"vcl-{uid}"
    ]  # fmt: skip


def status_row(namespace: str, pod: str) -> dict[str, Any]:
    _, rows = vcl_status(pod, "-n", namespace)
    (row,) = rows
    return row


def agent_get(api: Any, path: str) -> bytes:
    """The agent's HTTP endpoint through the API server's pod proxy (as vcl-status does)."""
    response = client.CoreV1Api(api).connect_get_namespaced_pod_proxy_with_path(
        f"{addon_pod(api, 'vcl-agent')}:9464", "vcl-system", path, _preload_content=False
    )
    return bytes(response.data)


def agent_entry(api: Any, uid: str) -> dict[str, Any]:
    body = json.loads(agent_get(api, "status"))
    return next(p for p in body["pods"] if p["uid"] == uid)  # type: ignore[no-any-return]


def test_a_real_server_is_injected_registered_ready_and_on_vpp(
    installed: Any, namespace: str, wait_for: Callable[..., Any]
) -> None:
    pod = start(installed, namespace, wait_for, "web", ["nginx", "-c", "/opt/e2e/nginx.conf"],
                probe_port=8080)  # fmt: skip
    name, uid = pod.metadata.name, pod.metadata.uid
    status = json.loads(pod.metadata.annotations["vcl.io/status"])
    assert status["containers"] == ["web"]
    assert json.loads(pod.metadata.annotations["vcl.io/registered"])["namespaceId"] == f"vcl-{uid}"
    gate = [c for c in pod.status.conditions if c.type == "vcl.io/dataplane-ready"]
    assert gate and gate[0].status == "True"
    init_log = kubectl("logs", "-n", namespace, name, "-c", "vcl-init")
    assert "runtime 26.06 copied" in init_log and "registered after" in init_log
    # exec and logs work in an injected container (a shell through the preload).
    assert kubectl("exec", "-n", namespace, name, "-c", "web", "--", "sh", "-c",
                   "echo ok").strip() == "ok"  # fmt: skip
    assert "libunwind" not in kubectl("exec", "-n", namespace, name, "--", "sh", "-c",
                                      "ls /usr/lib/x86_64-linux-gnu/ | grep unwind || true")  # fmt: skip
    # The nginx process is a VPP app of its namespace, with its listener on VPP too.
    apps = wait_for("nginx in VPP", lambda: apps_of(installed, "web", uid))
    assert apps
    assert ":8080" in vppctl(installed, "show app listeners")
    row = wait_for("vcl-status attachment", lambda: (lambda r: r if r["apps"] else None)(
        status_row(namespace, name)))  # fmt: skip
    assert row["healthy"] and row["registered"] == f"vcl-{uid}", row
    (web,) = agent_entry(installed, uid)["attachment"]
    assert (web["name"], web["ldp"], web["problem"]) == ("web", "loaded", None)
    assert "vcl-dualstack" not in kubectl("logs", "-n", namespace, name, "-c", "web")


def test_pod_to_pod_traffic_goes_through_vpp(
    installed: Any, namespace: str, wait_for: Callable[..., Any]
) -> None:
    server = start(installed, namespace, wait_for, "echo",
                   ["python3", "/opt/e2e/echo.py", "serve", "7000"])  # fmt: skip
    peer = start(installed, namespace, wait_for, "client", ["sleep", "infinity"])
    wait_for("the echo listener in VPP", lambda: ":7000" in vppctl(installed, "show app listeners"))
    seen: list[str] = []

    def watch() -> None:
        for _ in range(60):
            text = vppctl(installed, "show session verbose")
            if f"{server.status.pod_ip}:7000" in text and "ESTABLISHED" in text:
                seen.extend([text, vppctl(installed, "show app")])
                return
            time.sleep(0.5)

    watcher = threading.Thread(target=watch)
    watcher.start()
    out = kubectl("exec", "-n", namespace, peer.metadata.name, "--", "python3",
                  "/opt/e2e/echo.py", "send", server.status.pod_ip, "7000", "20000", "1024")  # fmt: skip
    watcher.join()
    result = dict(word.split("=") for word in out.strip().splitlines()[-1].split())
    assert int(result["sent"]) == 20000 * 1024
    assert seen, "VPP never showed the client's session to the echo server"
    # The client process, while it ran, was a VPP app named after its container and pod.
    assert [a for a in parse_apps(seen[1]) if is_containers_app(a.name, "client", peer.metadata.uid)
            and a.ns_id == f"vcl-{peer.metadata.uid}"], seen[1]  # fmt: skip


def served(namespace: str, pod: Any) -> list[str]:
    return list(status_row(namespace, pod.metadata.name)["vpp_serves"])


def test_two_replicas_on_one_node_each_reached_through_vpp_by_its_own_ip(
    installed: Any, namespace: str, wait_for: Callable[..., Any]
) -> None:
    """Mode local: each pod has its own IPs in VPP, so two replicas listen on one port
    (once EADDRINUSE, CrashLoopBackOff) and each is reached through VPP at its IP."""
    client.AppsV1Api(installed).create_namespaced_deployment(
        namespace, deployment("twin", ["python3", "/opt/e2e/echo.py", "serve", "7000"],
                              replicas=2))  # fmt: skip
    wait_for("both replicas Ready", lambda: len(ready_pods(installed, namespace, "twin")) == 2,
             timeout=90)  # fmt: skip
    twins = ready_pods(installed, namespace, "twin")
    peer = start(installed, namespace, wait_for, "client", ["sleep", "infinity"])
    for pod in twins:
        ip = pod.status.pod_ip
        wait_for(f"{ip}:7000 in the endpoint table",
                 lambda ip=ip, pod=pod: f"{ip}:7000/tcp" in served(namespace, pod))  # fmt: skip
        row = status_row(namespace, pod.metadata.name)
        assert (
            row["healthy"]
            and row["apps"] == 1
            and pod.status.container_statuses[0].restart_count == 0
        ), row
        with HeldExchange(namespace, peer.metadata.name, ip, 7000):
            sessions = vpp_sessions_to(installed, ip, 7000)
            assert sessions, f"no VPP session with {ip}:7000"
            server = status_row(namespace, pod.metadata.name)
            assert server["connections"]["vpp"] >= 1, server
            assert server["connections"]["kernel"] == 0, server
            caller = status_row(namespace, peer.metadata.name)
            assert ip in caller["vpp_peers"], caller
            assert caller["connections"]["vpp"] >= 1, caller


def test_the_client_reaches_a_plain_pod_a_service_and_the_api_server_over_the_kernel(
    installed: Any, namespace: str, wait_for: Callable[..., Any]
) -> None:
    """What VPP cannot serve stays on the kernel, as if the pod were not injected (once
    every address went to VPP and was reset)."""
    core = client.CoreV1Api(installed)
    plain_ns = f"{namespace}-plain"
    core.create_namespace({"metadata": {"name": plain_ns}})
    try:
        client.AppsV1Api(installed).create_namespaced_deployment(
            plain_ns, deployment("plain", ["python3", "/opt/e2e/echo.py", "serve", "7000"])
        )
        core.create_namespaced_service(plain_ns, {
            "metadata": {"name": "plain"},
            "spec": {"selector": {"app": "plain"}, "ports": [{"port": 80, "targetPort": 7000}]},
        })  # fmt: skip
        target = wait_for("the plain pod", lambda: next(
            (p for p in ready_pods(installed, plain_ns, "plain") if p.status.pod_ip), None))  # fmt: skip
        cluster_ip = core.read_namespaced_service("plain", plain_ns).spec.cluster_ip
        peer = start(installed, namespace, wait_for, "client", ["sleep", "infinity"])
        for host, port in ((target.status.pod_ip, 7000), (cluster_ip, 80)):
            with HeldExchange(namespace, peer.metadata.name, host, port):
                assert not vpp_sessions_to(installed, host, port)
                row = status_row(namespace, peer.metadata.name)
                assert row["connections"]["kernel"] >= 1 and row["connections"]["vpp"] == 0, row
        kubectl("exec", "-n", namespace, peer.metadata.name, "--", "python3", "-c",
                "import socket; socket.create_connection(('10.96.0.1', 443), timeout=5).close()",
                timeout=30)  # fmt: skip
    finally:
        core.delete_namespace(plain_ns, grace_period_seconds=0)


def test_an_address_that_is_not_the_servers_never_reaches_it(
    installed: Any, namespace: str, wait_for: Callable[..., Any]
) -> None:
    start(installed, namespace, wait_for, "echo", ["python3", "/opt/e2e/echo.py", "serve", "7000"])
    peer = start(installed, namespace, wait_for, "client", ["sleep", "infinity"])
    run = subprocess.run(
        ["kubectl", "exec", "-n", namespace, peer.metadata.name, "--", "python3",
         "/opt/e2e/echo.py", "send", "10.244.0.250", "7000", "1", "8"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode != 0, "a connection to a nonexistent address was echoed"


def test_a_pod_behind_a_network_policy_is_reached_over_the_kernel_only(
    installed: Any, namespace: str, wait_for: Callable[..., Any]
) -> None:
    """Cut-through inside VPP is not subject to NetworkPolicy: a selected pod leaves the
    table, so its peers reach it on the kernel, where the CNI enforces policy. The policy
    here allows everything (the result must not depend on whether the lab's CNI enforces
    it); its removal puts the pod back in the table, and a connection opened on the
    kernel before carries on."""
    guarded = start(installed, namespace, wait_for, "guarded",
                    ["python3", "/opt/e2e/echo.py", "serve", "7000"])  # fmt: skip
    ip = guarded.status.pod_ip
    peer = start(installed, namespace, wait_for, "client", ["sleep", "infinity"])
    wait_for("the pod in the table", lambda: f"{ip}:7000/tcp" in served(namespace, guarded))
    policy = {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "guard"},
        "spec": {"podSelector": {"matchLabels": {"app": "guarded"}},
                 "policyTypes": ["Ingress"], "ingress": [{}]},
    }  # fmt: skip
    client.NetworkingV1Api(installed).create_namespaced_network_policy(namespace, policy)
    row = wait_for("the pod out of the table", lambda: (lambda r: r if not r["vpp_serves"]
                   and r["not_through_vpp"] else None)(status_row(namespace, guarded.metadata.name)))  # fmt: skip
    assert any("guard" in why for why in row["not_through_vpp"]), row
    time.sleep(1.5)  # the table reaches every pod within 1 s of the agent's change
    with HeldExchange(namespace, peer.metadata.name, ip, 7000, hold=20) as before:
        assert not vpp_sessions_to(installed, ip, 7000)
        server = status_row(namespace, guarded.metadata.name)
        assert server["connections"]["kernel"] >= 1 and server["connections"]["vpp"] == 0
        client.NetworkingV1Api(installed).delete_namespaced_network_policy("guard", namespace)
        wait_for("the pod back in the table",
                 lambda: f"{ip}:7000/tcp" in served(namespace, guarded))  # fmt: skip
        time.sleep(1.5)
        with HeldExchange(namespace, peer.metadata.name, ip, 7000, hold=5):
            assert vpp_sessions_to(installed, ip, 7000), "the new connection is not on VPP"
        assert before.proc.poll() is None  # the kernel connection is still open


def test_a_static_binary_is_flagged_preload_did_not_take(
    installed: Any, namespace: str, wait_for: Callable[..., Any]
) -> None:
    pod = start(installed, namespace, wait_for, "static", ["/opt/e2e/static-echo", ":7000"])

    def flagged() -> dict[str, Any] | None:
        row = status_row(namespace, pod.metadata.name)
        return row if any("preload did not take" in w for w in row["warnings"]) else None

    row = wait_for("vcl-status to flag it", flagged, timeout=60)
    assert not row["healthy"] and row["registered"] == f"vcl-{pod.metadata.uid}"
    code, _ = vcl_status(pod.metadata.name, "-n", namespace)
    assert code == 1


def test_a_deleted_pods_namespace_socket_and_directory_go_within_10s(
    installed: Any, namespace: str, wait_for: Callable[..., Any]
) -> None:
    pod = start(
        installed, namespace, wait_for, "echo", ["python3", "/opt/e2e/echo.py", "serve", "7000"]
    )
    ns_id = f"vcl-{pod.metadata.uid}"
    assert ns_id in vppctl(installed, "show app ns")
    assert pod.metadata.uid in agent_exec(installed, "ls", "/var/run/vcl/pods")
    client.AppsV1Api(installed).delete_namespaced_deployment("echo", namespace)
    client.CoreV1Api(installed).delete_namespaced_pod(pod.metadata.name, namespace,
                                                      grace_period_seconds=0)  # fmt: skip
    started = time.monotonic()
    wait_for("the namespace gone from VPP", lambda: ns_id not in vppctl(installed, "show app ns"),
             timeout=10, interval=0.5)  # fmt: skip
    wait_for("the directory gone", lambda: pod.metadata.uid not in agent_exec(
        installed, "ls", "/var/run/vcl/pods"), timeout=10, interval=0.5)  # fmt: skip
    assert time.monotonic() - started <= 10


def test_a_vpp_restart_is_detected_pods_are_evicted_and_registered_again(
    installed: Any, namespace: str, wait_for: Callable[..., Any], addon_namespace: str
) -> None:
    before = start(
        installed, namespace, wait_for, "echo", ["python3", "/opt/e2e/echo.py", "serve", "7000"]
    )
    core = client.CoreV1Api(installed)
    core.delete_namespaced_pod(addon_pod(installed, "vcl-vpp"), addon_namespace)

    def replaced() -> Any:
        pods = ready_pods(installed, namespace, "echo")
        return pods[0] if pods and pods[0].metadata.uid != before.metadata.uid else None

    after = wait_for("the evicted pod's replacement Ready", replaced, timeout=240)
    events = core.list_namespaced_event(
        namespace, field_selector=f"involvedObject.uid={before.metadata.uid}"
    )
    assert any(e.reason == "VppRestarted" for e in events.items)
    namespaces = set(re.findall(r"vcl-[0-9a-f-]{36}", vppctl(installed, "show app ns")))
    # The new VPP holds the replacement's namespace, none of the evicted pod's, and
    # nothing that is not an existing injected pod's (earlier tests' pods may still be
    # terminating, with their namespaces until they are gone).
    injected = {
        f"vcl-{p.metadata.uid}" for p in core.list_pod_for_all_namespaces().items
        if p.metadata.annotations and "vcl.io/status" in p.metadata.annotations
    }  # fmt: skip
    assert f"vcl-{after.metadata.uid}" in namespaces
    assert namespaces <= injected
    wait_for("the evicted pod's namespace gone once the pod is",
             lambda: f"vcl-{before.metadata.uid}" not in vppctl(installed, "show app ns"))  # fmt: skip
    assert before.metadata.uid not in agent_exec(installed, "ls", "/var/run/vcl/pods")
    metrics = core.connect_get_namespaced_pod_proxy_with_path(
        f"{addon_pod(installed, 'vcl-agent')}:9464", addon_namespace, "metrics"
    )
    assert re.search(r"vcl_agent_vpp_restarts_total [1-9]", str(metrics))
