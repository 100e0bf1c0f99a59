"""Whether a pod gets injected, and a sentence saying why (or why not)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from injector.core import constants as c
from injector.core.config import InjectorConfig
from injector.core.memo import ConfigMemo


@dataclass(frozen=True)
class Decision:
    """`code` is a short stable label (metrics, logs); `reason` is for people."""

    inject: bool
    code: str
    reason: str


# Asked for every admission; the config is immutable (a reload makes a new one).
_EXCLUDED: ConfigMemo[frozenset[str]] = ConfigMemo(
    lambda config, _: config.all_excluded_namespaces()
)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict | Mapping) else {}  # dict first: 10x cheaper


def decide(
    pod: Any, namespace_labels: Mapping[str, Any] | None, config: InjectorConfig
) -> Decision:
    """Decide for one pod (or pod template). Never raises, whatever the input holds."""
    if not isinstance(pod, dict | Mapping):
        return Decision(False, "not-a-pod", "the object is not a pod (not a mapping)")
    meta = _mapping(pod.get("metadata"))
    spec = _mapping(pod.get("spec"))
    annotations = _mapping(meta.get("annotations"))
    namespace = meta.get("namespace")
    labels = _mapping(namespace_labels)

    if isinstance(namespace, str) and namespace in _EXCLUDED.get(config):
        return Decision(
            False,
            "excluded-namespace",
            f"namespace {namespace!r} is excluded from injection by the injector config "
            "(system namespaces and the add-on's own); run the workload in another namespace",
        )
    if spec.get("hostNetwork") is True:
        return Decision(
            False,
            "host-network",
            "the pod uses hostNetwork: its sockets are the node's, which VPP app namespaces "
            "cannot serve; remove hostNetwork to inject it",
        )

    # The pod's own choice: the annotation, else the label of the same name (a
    # MutatingWebhookConfiguration's objectSelector can match labels only, so the
    # pod-level opt-in entry selects on the label).
    wanted = annotations.get(c.ANNOTATION_INJECT)
    source = "annotation"
    if wanted is None:
        wanted = _mapping(meta.get("labels")).get(c.ANNOTATION_INJECT)
        source = "label"
    if wanted is not None and wanted not in ("true", "false"):
        return Decision(
            False,
            "invalid-annotation",
            f"{source} {c.ANNOTATION_INJECT}={_show(wanted)} is invalid: accepted values are "
            '"true" or "false"',
        )
    if wanted == "false":
        return Decision(
            False,
            "pod-opt-out",
            f'the pod opts out with {source} {c.ANNOTATION_INJECT}="false"; remove it to inject',
        )
    already = c.ANNOTATION_STATUS in annotations
    if wanted == "true":
        return _yes(already, f'the pod opts in with {source} {c.ANNOTATION_INJECT}="true"')

    label = labels.get(c.NAMESPACE_LABEL)
    where = f"namespace {namespace!r}" if isinstance(namespace, str) else "the namespace"
    if label == "enabled":
        return _yes(already, f"{where} is labelled {c.NAMESPACE_LABEL}=enabled")
    if label == "disabled":
        return Decision(
            False,
            "namespace-disabled",
            f"{where} is labelled {c.NAMESPACE_LABEL}=disabled; annotate the pod "
            f'{c.ANNOTATION_INJECT}="true" to inject it anyway',
        )
    if label is not None:
        return Decision(
            False,
            "invalid-namespace-label",
            f"{where} has label {c.NAMESPACE_LABEL}={_show(label)}, which is neither "
            '"enabled" nor "disabled"; fix the label',
        )
    return Decision(
        False,
        "not-enabled",
        f"{where} is not labelled {c.NAMESPACE_LABEL}=enabled and the pod has no "
        f'{c.ANNOTATION_INJECT}="true" annotation; add either to inject it',
    )


def _yes(already: bool, why: str) -> Decision:
    if already:
        return Decision(
            True,
            "reinjected",
            f"{why}; already injected, so the injection is re-applied (idempotent) to cover "
            "containers added since, such as a mesh proxy",
        )
    return Decision(True, "injected", why)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
