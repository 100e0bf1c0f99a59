"""What the agent wants for each injected pod on its node (pure: pod objects in, records out)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from injector.core import constants as c
from injector.core.render import VclConfParams, render_vcl_conf

# VPP 26.06's namespace_id is string[64]; "vcl-" + a 36-character pod uid fits, is made of
# the safe characters vppctl_py accepts, is stable across agent restarts and, pod uids
# being unique in a cluster, unique per node.
NAMESPACE_PREFIX = "vcl-"
APP_SOCKET_NAME = "app.sock"
# calico-vpp mode: VPP creates the app socket as this abstract name inside the pod's own
# network namespace (distinct from Calico/VPP's own "vpp/session").
ABSTRACT_SOCKET_NAME = "vcl-injector"
LOCAL, CALICO_VPP = "local", "calico-vpp"
VCL_CONF_NAME = "vcl.conf"
ENV_FILE_NAME = "vcl.env"


def namespace_id(pod_uid: str) -> str:
    return NAMESPACE_PREFIX + pod_uid


@dataclass(frozen=True)
class PodRegistration:
    """One pod's VPP app namespace and files, as they must be."""

    uid: str
    namespace: str
    name: str
    ns_id: str
    directory: str  # host path of the pod's directory: <root>/pods/<uid>
    sock_name: str  # host path of the app socket VPP creates
    vcl_conf: str  # the file's exact content
    owner_uid: int | None  # who must read the files (runAsUser), None: root
    owner_gid: int | None  # fsGroup
    runtime_version: str
    pod_ip: str | None
    selected: tuple[str, ...]
    eventfd: bool
    # calico-vpp mode, filled in by the network step: the pod sandbox's netns path and
    # the pod's own VPP interface. sock_name is then what VPP reports for it.
    netns: str | None = None
    sw_if_index: int | None = None
    # local mode with per-pod interfaces: VPP's name of the pod's loopback (the binding the
    # namespace must have; `show app ns` names it)
    interface_name: str | None = None
    pod_ips: tuple[str, ...] = ()  # status.podIPs, else podIP (dual-stack pods have two)

    @property
    def file_socket(self) -> bool:
        """The app socket is a file in the pod's directory (local mode)."""
        return self.netns is None


def pod_ips(pod: Mapping[str, Any]) -> tuple[str, ...]:
    """The pod's IPs: status.podIPs, else status.podIP (older clusters), else none."""
    status = pod.get("status") or {}
    ips = tuple(str(x["ip"]) for x in status.get("podIPs") or [] if x.get("ip"))
    return ips or ((str(status["podIP"]),) if status.get("podIP") else ())


class NotRegistrable(ValueError):
    """An injected pod whose status the agent cannot use; the message says why."""


def pod_directory(root: str, uid: str) -> str:
    return str(PurePosixPath(root) / "pods" / uid)


def _status(pod: Mapping[str, Any]) -> dict[str, Any] | None:
    raw = (pod.get("metadata") or {}).get("annotations", {}) or {}
    text = raw.get(c.ANNOTATION_STATUS)
    if text is None:
        return None
    try:
        status = json.loads(text)
    except ValueError as exc:
        raise NotRegistrable(f"annotation {c.ANNOTATION_STATUS} is not JSON") from exc
    if not isinstance(status, dict) or not isinstance(status.get("settings"), dict):
        raise NotRegistrable(f"annotation {c.ANNOTATION_STATUS} has no settings")
    return status


def wants_registration(pod: Mapping[str, Any]) -> bool:
    """Injected for the node's VPP and not finished (its containers may still run)."""
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        return False
    try:
        status = _status(pod)
    except NotRegistrable:
        return True  # reported as an error by registration()
    return status is not None and status.get("dataplane", "node") == "node"


def _owner(spec: Mapping[str, Any], selected: tuple[str, ...]) -> tuple[int | None, int | None]:
    pod_ctx = spec.get("securityContext") or {}
    user = pod_ctx.get("runAsUser")
    for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        ctx = container.get("securityContext") or {}
        if container.get("name") in selected and isinstance(ctx.get("runAsUser"), int):
            user = ctx["runAsUser"]
            break
    group = pod_ctx.get("fsGroup")
    return (
        user if isinstance(user, int) else None,
        group if isinstance(group, int) else None,
    )


def abstract_sock_name(netns: str) -> str:
    """The sock_name VPP reports for a namespace made with `netns` (its v3 handler
    builds it from the bare name)."""
    return f"abstract:{ABSTRACT_SOCKET_NAME},netns_name={netns}"


def registration(pod: Mapping[str, Any], root: str, network: str = LOCAL) -> PodRegistration:
    """The registration of one injected pod; NotRegistrable when its status is unusable.
    In calico-vpp mode the netns and interface are still to be found (network.py)."""
    meta = pod.get("metadata") or {}
    status = _status(pod)
    if status is None:
        raise NotRegistrable(f"the pod has no {c.ANNOTATION_STATUS} annotation")
    settings = status["settings"]
    uid = str(meta.get("uid", ""))
    directory = pod_directory(root, uid)
    try:
        conf = render_vcl_conf(
            VclConfParams(
                app_socket=(
                    f"abstract:{ABSTRACT_SOCKET_NAME}"
                    if network == CALICO_VPP
                    else f"{c.VCL_DIR}/{APP_SOCKET_NAME}"
                ),
                rx_fifo_size=int(settings["rxFifoSize"]),
                tx_fifo_size=int(settings["txFifoSize"]),
                eventfd=bool(settings["eventfd"]),
                workers=bool(settings["workers"]),
                app_scope=str(settings["appScope"]),
                event_queue_size=int(settings.get("eventQueueSize", 0)),
            )
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise NotRegistrable(f"annotation {c.ANNOTATION_STATUS}: bad settings ({exc})") from exc
    selected = tuple(str(x) for x in status.get("containers", []))
    user, group = _owner(pod.get("spec") or {}, selected)
    return PodRegistration(
        uid=uid,
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        ns_id=namespace_id(uid),
        directory=directory,
        sock_name=f"{directory}/{APP_SOCKET_NAME}",
        vcl_conf=conf,
        owner_uid=user,
        owner_gid=group,
        runtime_version=str(status.get("runtimeVersion", "")),
        pod_ip=(pod.get("status") or {}).get("podIP"),
        pod_ips=pod_ips(pod),
        selected=selected,
        eventfd=bool(settings["eventfd"]),
    )


def desired(
    pods: Iterable[Mapping[str, Any]], root: str, network: str = LOCAL
) -> tuple[dict[str, PodRegistration], dict[str, str]]:
    """Registrations by pod uid, and the pods (uid -> reason) that cannot be registered."""
    wanted: dict[str, PodRegistration] = {}
    refused: dict[str, str] = {}
    for pod in pods:
        if not wants_registration(pod):
            continue
        uid = str((pod.get("metadata") or {}).get("uid", ""))
        try:
            wanted[uid] = registration(pod, root, network)
        except NotRegistrable as exc:
            refused[uid] = str(exc)
    return wanted, refused
