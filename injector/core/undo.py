"""Undo an earlier injection exactly, from what its vcl.io/status annotation records.

inject() always works on a pod with any earlier injection removed, which makes it
idempotent and lets a re-invocation cover containers that another webhook (a mesh's
injector) added since our first pass.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from injector.core import constants as c
from injector.core.errors import InjectionError
from injector.core.tree import drop_if_empty

AFFINITY_EXPRESSION = {
    "key": c.NODE_LABEL_VPP,
    "operator": "In",
    "values": [c.NODE_LABEL_VPP_READY],
}
READINESS_GATE = {"conditionType": c.READINESS_GATE}
OUR_MOUNTS = (c.VOLUME_POD_DIR, c.VOLUME_LIBS)


class _StatusShape(BaseModel):
    """The parts of vcl.io/status that undo() relies on, type-checked before use."""

    model_config = ConfigDict(extra="allow", strict=True)
    version: int
    initContainers: list[str] = []
    volumes: list[str] = []
    env: dict[str, dict[str, str]] = {}
    prefixes: dict[str, str] = {}
    replacedEnv: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    nodeAffinity: bool = False
    readinessGate: bool = False
    defaultContainer: bool = False
    annotations: list[str] = []


def read_status(annotations: dict[str, Any]) -> dict[str, Any] | None:
    """The parsed vcl.io/status, None when absent; InjectionError when not ours."""
    raw = annotations.get(c.ANNOTATION_STATUS)
    if raw is None:
        return None
    try:
        if not isinstance(raw, str):
            raise ValueError("not a string")
        # JSON mode, so that arrays validate as the tuples of replacedEnv.
        shape = _StatusShape.model_validate_json(raw)
        if shape.version != c.STATUS_VERSION:
            raise ValueError(f"version {shape.version}")
    except (ValueError, ValidationError) as exc:
        raise InjectionError(
            f"annotation {c.ANNOTATION_STATUS} is not a status written by this vcl-injector "
            f"(version {c.STATUS_VERSION}): {str(exc).splitlines()[0]}; remove it and what it "
            "injected to re-inject the pod"
        ) from exc
    status: dict[str, Any] = json.loads(raw)
    return status


def undo(pod: dict[str, Any]) -> None:
    """Remove, in place, everything a previous inject() added to `pod`."""
    annotations = pod.get("metadata", {}).get("annotations") or {}
    status = read_status(annotations)
    if status is None:
        return
    spec = pod["spec"]
    ours = set(status.get("initContainers", []))
    if "initContainers" in spec:
        spec["initContainers"] = [x for x in spec["initContainers"] if x.get("name") not in ours]
        drop_if_empty(spec, "initContainers")
    volumes = set(status.get("volumes", []))
    if "volumes" in spec:
        spec["volumes"] = [v for v in spec["volumes"] if v.get("name") not in volumes]
        drop_if_empty(spec, "volumes")
    env_modes: dict[str, dict[str, str]] = status.get("env", {})
    for container in (*spec.get("containers", []), *spec.get("initContainers", [])):
        modes = env_modes.get(container.get("name", ""))
        if modes is not None:
            _undo_container(container, modes, status.get("prefixes", {}))
            replaced = status.get("replacedEnv", {}).get(container.get("name"), [])
            for index, entry in replaced:
                container.setdefault("env", []).insert(index, entry)
    if status.get("nodeAffinity"):
        _undo_affinity(spec)
    if status.get("readinessGate") and "readinessGates" in spec:
        spec["readinessGates"] = [g for g in spec["readinessGates"] if g != READINESS_GATE]
        drop_if_empty(spec, "readinessGates")
    if status.get("defaultContainer"):
        annotations.pop(c.ANNOTATION_DEFAULT_CONTAINER, None)
    for key in status.get("annotations", []):
        annotations.pop(key, None)
    del annotations[c.ANNOTATION_STATUS]


def wrapped_name(name: str) -> str:
    """Where an env var set by valueFrom is kept while ours expands it: VCL_APP_<NAME>."""
    return "VCL_APP_" + name


def _undo_container(
    container: dict[str, Any], modes: dict[str, str], prefixes: dict[str, str]
) -> None:
    wrapped = {wrapped_name(n): n for n, mode in modes.items() if mode == "wrapped"}
    env = []
    for entry in container.get("env", []):
        name = entry.get("name")
        mode = modes.get(name, "")
        if name in c.INJECTED_ENV or mode in ("added", "wrapped"):
            continue
        # New entries, not edits: the input's entries may be shared (copy_for_injection).
        if mode == "prepended":
            value = str(entry.get("value", "")).removeprefix(prefixes[name] + ":")
            entry = {**entry, "value": value}
        elif name in wrapped:
            entry = {**entry, "name": wrapped[name]}
        env.append(entry)
    container["env"] = env
    drop_if_empty(container, "env")
    mounts = [m for m in container.get("volumeMounts", []) if m.get("name") not in OUR_MOUNTS]
    container["volumeMounts"] = mounts
    drop_if_empty(container, "volumeMounts")


def _undo_affinity(spec: dict[str, Any]) -> None:
    affinity = spec.get("affinity") or {}
    node = affinity.get("nodeAffinity") or {}
    required = node.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    terms = []
    for term in required.get("nodeSelectorTerms", []):
        exprs = [e for e in term.get("matchExpressions", []) if e != AFFINITY_EXPRESSION]
        term["matchExpressions"] = exprs
        drop_if_empty(term, "matchExpressions")
        if term:
            terms.append(term)
    required["nodeSelectorTerms"] = terms
    drop_if_empty(required, "nodeSelectorTerms")
    drop_if_empty(node, "requiredDuringSchedulingIgnoredDuringExecution")
    drop_if_empty(affinity, "nodeAffinity")
    drop_if_empty(spec, "affinity")
