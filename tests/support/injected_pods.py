"""Injected pods for agent tests, made by the real injector (so their vcl.io/status is real)."""

from __future__ import annotations

import uuid
from typing import Any

from injector.core import InjectorConfig, inject

CONFIG = InjectorConfig()


def injected_pod(
    name: str,
    *,
    namespace: str = "demo",
    node: str = "node-a",
    annotations: dict[str, str] | None = None,
    uid: str | None = None,
    phase: str = "Pending",
    security: dict[str, Any] | None = None,
) -> dict[str, Any]:
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "annotations": dict(annotations or {})},
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "example/app:1"}]},
    }
    if security:
        pod["spec"]["securityContext"] = security
    out = inject(pod, CONFIG)
    out["metadata"]["uid"] = uid or str(uuid.uuid4())
    out["status"] = {"phase": phase}
    return out
