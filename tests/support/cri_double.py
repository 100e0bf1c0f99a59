"""A container runtime double: CRI's RuntimeService (ListPodSandbox, PodSandboxStatus) over
gRPC on a unix socket, answering the way containerd does (verbose status info carries the
OCI runtime spec as JSON, whose linux.namespaces names the sandbox's netns path)."""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from injector.agent.cri import MESSAGES as M
from injector.agent.cri import UID_LABEL


@dataclass
class FakeSandbox:
    pod_uid: str
    netns: str | None  # None: a host-network sandbox (no netns path in the spec)
    name: str = "pod"
    namespace: str = "demo"
    ready: bool = True
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: int = field(default_factory=time.time_ns)


class FakeCri:
    def __init__(self) -> None:
        self.sandboxes: list[FakeSandbox] = []
        self.calls: list[str] = []
        self.fail: grpc.StatusCode | None = None  # answer every call with this error

    def add(self, pod_uid: str, netns: str | None, **kw: Any) -> FakeSandbox:
        box = FakeSandbox(pod_uid, netns, **kw)
        self.sandboxes.append(box)
        return box

    # --- the two RPCs ---------------------------------------------------------------

    def _check(self, context: grpc.ServicerContext, name: str) -> None:
        self.calls.append(name)
        if self.fail is not None:
            context.abort(self.fail, "runtime not ready")

    def list_pod_sandbox(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._check(context, "ListPodSandbox")
        flt = request.filter
        items = []
        for box in self.sandboxes:
            state = 0 if box.ready else 1
            if flt.HasField("state") and flt.state.state != state:
                continue
            if flt.id and flt.id != box.id:
                continue
            labels = {UID_LABEL: box.pod_uid, "io.kubernetes.pod.name": box.name}
            if any(labels.get(k) != v for k, v in flt.label_selector.items()):
                continue
            meta = M["PodSandboxMetadata"](name=box.name, uid=box.pod_uid, namespace=box.namespace)
            items.append(
                M["PodSandbox"](
                    id=box.id, metadata=meta, state=state, created_at=box.created_at, labels=labels
                )
            )
        return M["ListPodSandboxResponse"](items=items)

    def pod_sandbox_status(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._check(context, "PodSandboxStatus")
        box = next((b for b in self.sandboxes if b.id == request.pod_sandbox_id), None)
        if box is None:
            context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"an error occurred when try to find sandbox {request.pod_sandbox_id!r}: not found",
            )
        namespaces: list[dict[str, str]] = [
            {"type": "pid"},
            {"type": "ipc"},
            {"type": "uts"},
            {"type": "mount"},
        ]
        if box.netns is not None:
            namespaces.append({"type": "network", "path": box.netns})
        info = {
            "pid": 4242,
            "processStatus": "running",
            "netNamespaceClosed": False,
            "image": "registry.k8s.io/pause:3.9",
            "runtimeType": "io.containerd.runc.v2",
            "runtimeSpec": {"ociVersion": "1.1.0", "linux": {"namespaces": namespaces}},
        }
        status = M["PodSandboxStatus"](
            id=box.id,
            metadata=M["PodSandboxMetadata"](
                name=box.name, uid=box.pod_uid, namespace=box.namespace
            ),
            state=0 if box.ready else 1,
            created_at=box.created_at,
        )
        verbose = {"info": json.dumps(info)} if request.verbose else {}
        return M["PodSandboxStatusResponse"](status=status, info=verbose)


@contextmanager
def serve_cri(cri: FakeCri) -> Iterator[str]:
    """Serve `cri` on a unix socket; yields its endpoint (unix:///...)."""
    handlers = {
        "ListPodSandbox": grpc.unary_unary_rpc_method_handler(
            cri.list_pod_sandbox,
            request_deserializer=M["ListPodSandboxRequest"].FromString,
            response_serializer=lambda m: m.SerializeToString(),
        ),
        "PodSandboxStatus": grpc.unary_unary_rpc_method_handler(
            cri.pod_sandbox_status,
            request_deserializer=M["PodSandboxStatusRequest"].FromString,
            response_serializer=lambda m: m.SerializeToString(),
        ),
    }
    with tempfile.TemporaryDirectory(prefix="cri", dir="/tmp") as tmp:
        endpoint = f"unix://{Path(tmp) / 'cri.sock'}"
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("runtime.v1.RuntimeService", handlers),)
        )
        server.add_insecure_port(endpoint)
        server.start()
        try:
            yield endpoint
        finally:
            server.stop(grace=None)
