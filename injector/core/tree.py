"""Small operations on JSON-shaped Kubernetes objects (dicts, lists, scalars)."""

from __future__ import annotations

import marshal
from collections.abc import Mapping
from typing import Any


def clone(value: Any) -> Any:
    """Deep copy of a JSON-shaped tree, done in C by marshal (about 10x copy.deepcopy).

    Trees holding other types (YAML timestamps, mapping proxies) take the slow path.
    Format version 2 has no back-references, so objects shared in the input (YAML
    aliases) come out as separate copies, as with copy.deepcopy of a JSON round trip.
    """
    try:
        return marshal.loads(marshal.dumps(value, 2))
    except ValueError:
        return _clone_slow(value)


def _clone_slow(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _clone_slow(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clone_slow(v) for v in value]
    return value


def mapping_at(parent: dict[str, Any], key: str) -> dict[str, Any]:
    """parent[key] as a dict, created when absent or null."""
    value = parent.get(key)
    if value is None:
        value = parent[key] = {}
    return value


def list_at(parent: dict[str, Any], key: str) -> list[Any]:
    """parent[key] as a list, created when absent or null."""
    value = parent.get(key)
    if value is None:
        value = parent[key] = []
    return value


def drop_if_empty(parent: dict[str, Any], key: str) -> None:
    if key in parent and not parent[key]:
        del parent[key]


def copy_for_injection(pod: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `pod` in which every part inject()/undo() may change is the copy's own;
    the rest is shared with the input (neither function writes to it).

    Sharing makes injection cheap and the patch diff fast (unchanged subtrees compare by
    identity). Callers must treat the result's untouched parts as read-only, as they
    must the input; `clone()` gives a fully independent tree.
    """
    out = dict(pod)
    meta = out.get("metadata")
    if isinstance(meta, Mapping):
        out["metadata"] = meta = dict(meta)
        if isinstance(meta.get("annotations"), Mapping):
            meta["annotations"] = dict(meta["annotations"])
    spec = out.get("spec")
    if not isinstance(spec, Mapping):
        return out
    out["spec"] = spec = dict(spec)
    for key in ("containers", "initContainers"):
        if isinstance(spec.get(key), list):
            spec[key] = [_own_container(c) for c in spec[key]]
    for key in ("volumes", "readinessGates"):
        if isinstance(spec.get(key), list):
            spec[key] = list(spec[key])
    if spec.get("affinity") is not None:
        spec["affinity"] = clone(spec["affinity"])  # small; its node terms are rewritten
    return out


def _own_container(container: Any) -> Any:
    if not isinstance(container, Mapping):
        return container
    out = dict(container)
    if isinstance(out.get("env"), list):
        out["env"] = list(out["env"])  # its entries are replaced, never edited, when changed
    if isinstance(out.get("volumeMounts"), list):
        out["volumeMounts"] = list(out["volumeMounts"])
    return out
