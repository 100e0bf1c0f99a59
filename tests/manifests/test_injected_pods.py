"""Pods injected with the shipped config fit the installed add-on.

Covers, for a pod injected by the real core (`inject`) with the config in the
vcl-injector-config ConfigMap of every overlay:
- its only host path is the agent's per-pod root (`--root`) + `/pods`, mounted per pod
  with subPathExpr, and never the VPP API socket directory or a parent of it;
- the images it pulls are the runtime image the VPP DaemonSet runs, at the same tag;
- the injected pod validates against Kubernetes 1.29 like the manifests themselves;
- dataplane `pod` (a VPP sidecar) mounts no host path at all.
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from injector.core import inject
from injector.core.config import parse_config

OVERLAYS = ["adaptive", "calico-vpp", "cert-manager", "dedicated", "default"]
API_SOCKET_DIRS = ("/run/vpp", "/var/run/vpp")

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web", "namespace": "demo", "uid": "0b6b4a1e-7f0c-4d7e-9a55-0c1d2e3f4a5b"},
    "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
}


def shipped_config(objects: list[dict[str, Any]]) -> Any:
    cm = next(
        o
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "vcl-injector-config"
    )
    return parse_config(cm["data"]["config.yaml"], source="vcl-injector-config")


def agent_root(objects: list[dict[str, Any]]) -> str:
    agent = next(
        o for o in objects if o["kind"] == "DaemonSet" and o["metadata"]["name"] == "vcl-agent"
    )
    args = agent["spec"]["template"]["spec"]["containers"][0]["args"]
    return str(args[args.index("--root") + 1])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_node_dataplane_pod_mounts_only_its_own_directory(
    overlays: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    injected = inject(POD, shipped_config(overlays[overlay]))
    spec = injected["spec"]
    host_paths = {v["name"]: v["hostPath"]["path"] for v in spec["volumes"] if "hostPath" in v}
    assert list(host_paths.values()) == [agent_root(overlays[overlay]) + "/pods"]
    for path in host_paths.values():
        assert not any(d == path or d.startswith(path.rstrip("/") + "/") for d in API_SOCKET_DIRS)
    for container in spec["containers"] + spec.get("initContainers", []):
        for mount in container.get("volumeMounts", []):
            if mount["name"] in host_paths:
                assert mount["subPathExpr"] == "$(VCL_POD_UID)", container["name"]
    kubernetes_validate.validate(injected, "1.29.0", strict=True)


@pytest.mark.parametrize("overlay", ["default", "dedicated", "cert-manager"])
def test_runtime_image_is_the_vpp_image(
    overlays: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    injected = inject(POD, shipped_config(overlays[overlay]))
    vpp = next(
        o
        for o in overlays[overlay]
        if o["kind"] == "DaemonSet" and o["metadata"]["name"] == "vcl-vpp"
    )
    vpp_image = vpp["spec"]["template"]["spec"]["containers"][0]["image"]
    init_images = {c["image"] for c in injected["spec"]["initContainers"]}
    assert init_images == {vpp_image}


def test_pod_dataplane_mounts_no_host_path(overlays: dict[str, list[dict[str, Any]]]) -> None:
    pod = {**POD, "metadata": {**POD["metadata"], "annotations": {"vcl.io/dataplane": "pod"}}}
    injected = inject(pod, shipped_config(overlays["default"]))
    assert [v for v in injected["spec"]["volumes"] if "hostPath" in v] == []
    kubernetes_validate.validate(injected, "1.29.0", strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_calico_vpp_pods_ask_calico_for_vcl_routing_and_nothing_else_differs(
    overlays: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    """Calico/VPP routes a pod's traffic to VPP's session layer only when the pod carries
    cni.projectcalico.org/vppVcl at creation; the calico-vpp config adds it and is
    otherwise the base config (no drift between the two copies)."""
    config = shipped_config(overlays[overlay])
    injected = inject(POD, config)
    annotations = injected["metadata"]["annotations"]
    if overlay == "calico-vpp":
        assert annotations["cni.projectcalico.org/vppVcl"] == "enable"
        base = shipped_config(overlays["default"])
        assert config.model_copy(update={"pod_annotations": {}}) == base
    else:
        assert "cni.projectcalico.org/vppVcl" not in annotations
