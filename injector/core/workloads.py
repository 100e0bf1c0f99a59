"""Find the pod (template) inside any workload object, and inject a whole manifest document."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from injector.core.config import InjectorConfig
from injector.core.decision import Decision, decide
from injector.core.mutation import inject
from injector.core.tree import clone

# kind -> path from the object to its pod template (a Pod is its own "template").
TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


@dataclass(frozen=True)
class DocumentResult:
    """One object after injection: `decisions` has one entry per pod template found."""

    obj: Any
    decisions: tuple[tuple[str, Decision], ...]


def _template(obj: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = obj
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


def inject_object(
    obj: Any,
    config: InjectorConfig,
    namespace_labels: Mapping[str, str],
    *,
    where: str = "document",
) -> DocumentResult:
    """Inject a workload object (or a List of them); other kinds pass through unchanged.

    Raises InjectionError/InvalidAnnotations; their message is prefixed with `where`.
    """
    if not isinstance(obj, Mapping):
        return DocumentResult(obj, ())
    kind = obj.get("kind")
    if kind == "List" and isinstance(obj.get("items"), list):
        out = clone(obj)
        decisions: list[tuple[str, Decision]] = []
        for i, item in enumerate(obj["items"]):
            result = inject_object(item, config, namespace_labels, where=f"{where} items[{i}]")
            out["items"][i] = result.obj
            decisions.extend(result.decisions)
        return DocumentResult(out, tuple(decisions))
    if not isinstance(kind, str) or kind not in TEMPLATE_PATHS:
        return DocumentResult(obj, ())
    path = TEMPLATE_PATHS[kind]
    label = f"{where} ({kind} {_name(obj)})"
    template = _template(obj, path)
    if not isinstance(template, Mapping):
        field = ".".join(path) or "the object"
        raise _located(ValueError(f"{field}: missing pod template"), label)
    decision = decide(_with_namespace(template, obj), namespace_labels, config)
    if not decision.inject:
        return DocumentResult(obj, ((label, decision),))
    try:
        injected = inject(template, config)
    except ValueError as exc:
        prefix = ".".join(path)
        raise _located(exc, label, prefix) from exc
    if not path:
        return DocumentResult(injected, ((label, decision),))
    out = clone(obj)
    parent = _template(out, path[:-1])
    parent[path[-1]] = injected
    return DocumentResult(out, ((label, decision),))


def _with_namespace(template: Mapping[str, Any], obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """decide() reads the namespace from the pod; a template inherits its workload's."""
    meta = template.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    outer = obj.get("metadata")
    namespace = outer.get("namespace") if isinstance(outer, Mapping) else None
    if "namespace" in meta or namespace is None:
        return template
    return {**template, "metadata": {**meta, "namespace": namespace}}


def _name(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    if isinstance(meta, Mapping):
        return str(meta.get("name") or meta.get("generateName") or "<unnamed>")
    return "<unnamed>"


class LocatedError(ValueError):
    """An injection error with the document and object it happened in."""


def _located(exc: ValueError, label: str, field_prefix: str = "") -> LocatedError:
    message = str(exc)
    if field_prefix and message.startswith("spec"):
        message = f"{field_prefix}.{message}"
    return LocatedError(f"{label}: {message}")
