"""decide(): who gets injected and the reason a user reads; never raises on any input."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from injector.core import InjectorConfig, decide

CONFIG = InjectorConfig()


def pod(
    *,
    namespace: str | None = "demo",
    annotations: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "p"}
    if labels is not None:
        meta["labels"] = labels
    if namespace is not None:
        meta["namespace"] = namespace
    if annotations is not None:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": {"containers": [{"name": "a"}], **spec}}


ENABLED = {"vcl-injection": "enabled"}


@pytest.mark.parametrize(
    ("the_pod", "labels", "inject", "code", "words"),
    [
        (pod(), ENABLED, True, "injected", "labelled vcl-injection=enabled"),
        (pod(), {}, False, "not-enabled", 'vcl.io/inject="true"'),
        (pod(), {"vcl-injection": "disabled"}, False, "namespace-disabled", "anyway"),
        (pod(), {"vcl-injection": "yes"}, False, "invalid-namespace-label", "'yes'"),
        (pod(annotations={"vcl.io/inject": "true"}), {}, True, "injected", "opts in"),
        (
            pod(annotations={"vcl.io/inject": "true"}),
            {"vcl-injection": "disabled"},
            True,
            "injected",
            "opts in",
        ),
        (pod(annotations={"vcl.io/inject": "false"}), ENABLED, False, "pod-opt-out", "remove"),
        (
            pod(annotations={"vcl.io/inject": "True"}),
            ENABLED,
            False,
            "invalid-annotation",
            "'True'",
        ),
        (pod(hostNetwork=True), ENABLED, False, "host-network", "hostNetwork"),
        (
            pod(hostNetwork=True, annotations={"vcl.io/inject": "true"}),
            ENABLED,
            False,
            "host-network",
            "remove hostNetwork",
        ),
        (pod(namespace="kube-system"), ENABLED, False, "excluded-namespace", "'kube-system'"),
        (pod(namespace="kube-public"), ENABLED, False, "excluded-namespace", "excluded"),
        (pod(namespace="vcl-system"), ENABLED, False, "excluded-namespace", "add-on"),
        (
            pod(namespace="kube-system", annotations={"vcl.io/inject": "true"}),
            ENABLED,
            False,
            "excluded-namespace",
            "excluded",
        ),
        (pod(annotations={"vcl.io/status": "{}"}), ENABLED, True, "reinjected", "idempotent"),
        (pod(labels={"vcl.io/inject": "true"}), {}, True, "injected", 'label vcl.io/inject="true"'),
        (
            pod(labels={"vcl.io/inject": "false"}),
            ENABLED,
            False,
            "pod-opt-out",
            'label vcl.io/inject="false"',
        ),
        (
            pod(labels={"vcl.io/inject": "no"}),
            ENABLED,
            False,
            "invalid-annotation",
            "label vcl.io/inject='no'",
        ),
        (
            pod(labels={"vcl.io/inject": "true"}, annotations={"vcl.io/inject": "false"}),
            {},
            False,
            "pod-opt-out",
            "annotation",
        ),
        (pod(namespace=None), ENABLED, True, "injected", "the namespace is labelled"),
    ],
)
def test_decision_table(
    the_pod: dict[str, Any], labels: dict[str, str], inject: bool, code: str, words: str
) -> None:
    decision = decide(the_pod, labels, CONFIG)
    assert (decision.inject, decision.code) == (inject, code)
    assert words in decision.reason


def test_excluded_namespaces_come_from_config() -> None:
    config = InjectorConfig(excludedNamespaces=("legacy",), namespace="my-addon")
    assert decide(pod(namespace="legacy"), ENABLED, config).code == "excluded-namespace"
    assert decide(pod(namespace="my-addon"), ENABLED, config).code == "excluded-namespace"
    assert decide(pod(namespace="kube-system"), ENABLED, config).inject


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)


@given(
    the_pod=json_values
    | st.fixed_dictionaries(
        {"metadata": st.dictionaries(st.sampled_from(["annotations", "namespace"]), json_values)}
    )
    | st.builds(
        lambda a, ns, hn: pod(annotations=a, namespace=ns, hostNetwork=hn),
        st.dictionaries(st.sampled_from(["vcl.io/inject", "vcl.io/status", "x"]), json_values),
        st.text(max_size=12),
        json_values,
    ),
    labels=st.none() | json_values | st.dictionaries(st.text(max_size=15), json_values),
)
def test_decide_never_raises(the_pod: Any, labels: Any) -> None:
    decision = decide(the_pod, labels, CONFIG)
    assert isinstance(decision.inject, bool) and decision.reason
