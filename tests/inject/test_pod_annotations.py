"""`podAnnotations` in the config: what a calico-vpp install relies on to have Calico/VPP
route an injected pod's traffic to VPP's session layer (cni.projectcalico.org/vppVcl).
Added at injection to node-dataplane pods, never over the pod's own value, removed exactly
on re-injection, and a bad key is a config error naming it."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import pytest

from injector.core import InjectorConfig, inject, patch
from injector.core.config import ConfigError, parse_config

KEY = "cni.projectcalico.org/vppVcl"
CALICO = InjectorConfig.model_validate({"podAnnotations": {KEY: "enable"}})


def pod(annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "demo", "annotations": dict(annotations or {})},
        "spec": {"containers": [{"name": "app", "image": "example/app:1"}]},
    }


def test_added_to_injected_pods_and_in_the_patch() -> None:
    original = pod()
    out = inject(original, CALICO)
    assert out["metadata"]["annotations"][KEY] == "enable"
    ops = patch(original, out)
    assert {
        "op": "add",
        "path": "/metadata/annotations/cni.projectcalico.org~1vppVcl",
        "value": "enable",
    } in ops
    assert jsonpatch.apply_patch(original, ops) == out
    assert inject(out, CALICO) == out


def test_the_pods_own_value_wins_and_survives_reinjection() -> None:
    out = inject(pod({KEY: "disable"}), CALICO)
    assert out["metadata"]["annotations"][KEY] == "disable"
    again = inject(out, InjectorConfig())  # a config without it: the pod's value stays
    assert again["metadata"]["annotations"][KEY] == "disable"


def test_reinjection_under_a_config_without_it_removes_it() -> None:
    out = inject(pod(), CALICO)
    again = inject(copy.deepcopy(out), InjectorConfig())
    assert KEY not in again["metadata"]["annotations"]
    assert again == inject(pod(), InjectorConfig())


def test_not_added_to_pods_with_their_own_vpp() -> None:
    out = inject(pod({"vcl.io/dataplane": "pod"}), CALICO)
    assert KEY not in out["metadata"]["annotations"]


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("vcl.io/inject", "the injector's own"),
        ("has space", "not a valid annotation key"),
        ("-lead.example/x", "not a valid annotation key"),
    ],
)
def test_bad_keys_are_config_errors_naming_them(key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(f"podAnnotations: {{'{key}': 'x'}}\n")
    assert key in str(err.value) and problem in str(err.value)
