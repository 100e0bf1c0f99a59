"""The node's container runtime (CRI, gRPC on a unix socket): which pod sandbox is whose,
and the network namespace each sandbox runs in. calico-vpp mode needs the netns path to
have VPP create a pod's app socket inside the pod's own network namespace.

Only two calls of CRI's `runtime.v1.RuntimeService` are used: ListPodSandbox and
PodSandboxStatus (verbose). Their messages are declared here, field numbers as in
k8s.io/cri-api's api.proto, through protobuf's descriptor API: no generated code, and
fields we do not declare are skipped by the parser as protobuf's rules say."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

SERVICE = "/runtime.v1.RuntimeService/"
UID_LABEL = "io.kubernetes.pod.uid"  # set by the kubelet on every sandbox
SANDBOX_READY = 0

_F = descriptor_pb2.FieldDescriptorProto
_STRING, _BOOL, _UINT32, _INT64 = _F.TYPE_STRING, _F.TYPE_BOOL, _F.TYPE_UINT32, _F.TYPE_INT64
_MESSAGE, _ENUM = _F.TYPE_MESSAGE, _F.TYPE_ENUM
_MAP = "map"  # marker: map<string, string>

# message -> [(field name, number, type, type name or None, repeated)]
_MESSAGES: dict[str, list[tuple[str, int, Any, str | None, bool]]] = {
    "PodSandboxMetadata": [
        ("name", 1, _STRING, None, False),
        ("uid", 2, _STRING, None, False),
        ("namespace", 3, _STRING, None, False),
        ("attempt", 4, _UINT32, None, False),
    ],
    "PodSandboxStateValue": [("state", 1, _ENUM, "PodSandboxState", False)],
    "PodSandboxFilter": [
        ("id", 1, _STRING, None, False),
        ("state", 2, _MESSAGE, "PodSandboxStateValue", False),
        ("label_selector", 3, _MAP, None, True),
    ],
    "ListPodSandboxRequest": [("filter", 1, _MESSAGE, "PodSandboxFilter", False)],
    "PodSandbox": [
        ("id", 1, _STRING, None, False),
        ("metadata", 2, _MESSAGE, "PodSandboxMetadata", False),
        ("state", 3, _ENUM, "PodSandboxState", False),
        ("created_at", 4, _INT64, None, False),
        ("labels", 5, _MAP, None, True),
        ("annotations", 6, _MAP, None, True),
        ("runtime_handler", 7, _STRING, None, False),
    ],
    "ListPodSandboxResponse": [("items", 1, _MESSAGE, "PodSandbox", True)],
    "PodSandboxStatusRequest": [
        ("pod_sandbox_id", 1, _STRING, None, False),
        ("verbose", 2, _BOOL, None, False),
    ],
    "PodSandboxNetworkStatus": [("ip", 1, _STRING, None, False)],
    "PodSandboxStatus": [
        ("id", 1, _STRING, None, False),
        ("metadata", 2, _MESSAGE, "PodSandboxMetadata", False),
        ("state", 3, _ENUM, "PodSandboxState", False),
        ("created_at", 4, _INT64, None, False),
        ("network", 5, _MESSAGE, "PodSandboxNetworkStatus", False),
        ("labels", 7, _MAP, None, True),
        ("annotations", 8, _MAP, None, True),
        ("runtime_handler", 9, _STRING, None, False),
    ],
    "PodSandboxStatusResponse": [
        ("status", 1, _MESSAGE, "PodSandboxStatus", False),
        ("info", 2, _MAP, None, True),
    ],
}


def _entry_name(field: str) -> str:
    return "".join(part.title() for part in field.split("_")) + "Entry"


def _build() -> dict[str, Any]:
    proto = descriptor_pb2.FileDescriptorProto(
        name="vcl_injector_cri_subset.proto", package="runtime.v1", syntax="proto3"
    )
    state = proto.enum_type.add(name="PodSandboxState")
    state.value.add(name="SANDBOX_READY", number=0)
    state.value.add(name="SANDBOX_NOTREADY", number=1)
    for name, fields in _MESSAGES.items():
        msg = proto.message_type.add(name=name)
        for fname, number, ftype, type_name, repeated in fields:
            field = msg.field.add(name=fname, number=number)
            field.label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
            if ftype == _MAP:
                entry = msg.nested_type.add(name=_entry_name(fname))
                entry.options.map_entry = True
                entry.field.add(name="key", number=1, type=_STRING, label=_F.LABEL_OPTIONAL)
                entry.field.add(name="value", number=2, type=_STRING, label=_F.LABEL_OPTIONAL)
                field.type = _MESSAGE
                field.type_name = f".runtime.v1.{name}.{_entry_name(fname)}"
            else:
                field.type = ftype
                if type_name:
                    field.type_name = f".runtime.v1.{type_name}"
    pool = descriptor_pool.DescriptorPool()  # private: no clash with a real CRI package
    pool.Add(proto)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"runtime.v1.{name}"))
        for name in _MESSAGES
    }


MESSAGES = _build()


class CriError(RuntimeError):
    """The container runtime could not be asked, or answered something unusable."""


@dataclass(frozen=True)
class Sandbox:
    id: str
    pod_uid: str
    namespace: str
    name: str
    created_at: int


def network_namespace(info: Mapping[str, str]) -> str | None:
    """The sandbox's netns path from PodSandboxStatus' verbose info: containerd and CRI-O
    both put the OCI runtime spec, whose linux.namespaces lists the network one's path,
    in a JSON value (containerd: info["info"]["runtimeSpec"])."""
    for raw in info.values():
        try:
            data = json.loads(raw)
        except ValueError:
            continue
        spec = data.get("runtimeSpec") if isinstance(data, dict) else None
        namespaces = ((spec or {}).get("linux") or {}).get("namespaces") or []
        for ns in namespaces:
            if isinstance(ns, dict) and ns.get("type") == "network" and ns.get("path"):
                return str(ns["path"])
    return None


class Cri:
    """A client of the CRI runtime service on `endpoint` (unix:///run/containerd/...)."""

    def __init__(self, endpoint: str, *, timeout: float = 5.0) -> None:
        if "://" not in endpoint:
            endpoint = f"unix://{endpoint}"
        self.endpoint, self.timeout = endpoint, timeout
        self._channel = grpc.insecure_channel(endpoint)

    def close(self) -> None:
        self._channel.close()

    def _call(self, method: str, request: Any, reply: str) -> Any:
        rpc = self._channel.unary_unary(
            SERVICE + method,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=MESSAGES[reply].FromString,
        )
        try:
            return rpc(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            code = exc.code().name if hasattr(exc, "code") else "UNKNOWN"
            details = exc.details() if hasattr(exc, "details") else str(exc)
            raise CriError(
                f"container runtime at {self.endpoint}: {method} failed: {code} {details}"
            ) from exc

    def ready_sandboxes(self) -> list[Sandbox]:
        state = MESSAGES["PodSandboxStateValue"](state=SANDBOX_READY)
        request = MESSAGES["ListPodSandboxRequest"](
            filter=MESSAGES["PodSandboxFilter"](state=state)
        )
        reply = self._call("ListPodSandbox", request, "ListPodSandboxResponse")
        return [_sandbox(item) for item in reply.items]

    def netns(self, sandbox_id: str) -> str | None:
        request = MESSAGES["PodSandboxStatusRequest"](pod_sandbox_id=sandbox_id, verbose=True)
        reply = self._call("PodSandboxStatus", request, "PodSandboxStatusResponse")
        return network_namespace(dict(reply.info))


def _sandbox(item: Any) -> Sandbox:
    uid = item.metadata.uid or dict(item.labels).get(UID_LABEL, "")
    return Sandbox(item.id, uid, item.metadata.namespace, item.metadata.name, item.created_at)


class NetnsLocator:
    """Pod uid -> the netns path of its newest ready sandbox. One ListPodSandbox per
    refresh; PodSandboxStatus only for sandboxes not seen before (a sandbox's netns
    never changes; a pod whose sandbox is recreated gets a new sandbox id)."""

    def __init__(self, cri: Cri) -> None:
        self.cri = cri
        self._by_uid: dict[str, Sandbox] = {}
        self._netns: dict[str, str | None] = {}  # sandbox id -> path

    def refresh(self, uids: Iterable[str]) -> None:
        wanted = set(uids)
        newest: dict[str, Sandbox] = {}
        for box in self.cri.ready_sandboxes():
            if box.pod_uid in wanted:
                have = newest.get(box.pod_uid)
                if have is None or box.created_at > have.created_at:
                    newest[box.pod_uid] = box
        self._by_uid = newest
        live = {box.id for box in newest.values()}
        self._netns = {k: v for k, v in self._netns.items() if k in live}
        for box in newest.values():
            if self._netns.get(box.id) is None:  # unknown, or not reported yet: ask
                self._netns[box.id] = self.cri.netns(box.id)

    def netns(self, uid: str) -> str | None:
        box = self._by_uid.get(uid)
        return None if box is None else self._netns.get(box.id)
