"""Checks that a pod has the shape inject() relies on; every failure names the field.

The API server validates pods before admission, so real input passes; these checks
keep anything else (offline manifests, fuzzing) from turning into a crash.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from injector.core.errors import InjectionError


def _list_of_named(value: Any, where: str, *, required: bool = False) -> None:
    if value is None and not required:
        return
    if not isinstance(value, list):
        raise InjectionError(f"{where}: expected a list")
    for i, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InjectionError(f"{where}[{i}]: expected an object with a name")


def _mapping(value: Any, where: str) -> None:
    if value is not None and not isinstance(value, dict):
        raise InjectionError(f"{where}: expected an object")


def check_pod(pod: Mapping[str, Any]) -> None:
    _mapping(pod.get("metadata"), "metadata")
    meta = pod.get("metadata") or {}
    _mapping(meta.get("annotations"), "metadata.annotations")
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        raise InjectionError("spec: the pod has no spec")
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        raise InjectionError("spec.containers: the pod has no containers")
    _list_of_named(containers, "spec.containers", required=True)
    _list_of_named(spec.get("initContainers"), "spec.initContainers")
    for key in ("containers", "initContainers"):
        for i, container in enumerate(spec.get(key) or ()):
            _check_container(container, key, i)
    _list_of_named(spec.get("volumes"), "spec.volumes")
    gates = spec.get("readinessGates")
    if gates is not None and not isinstance(gates, list):
        raise InjectionError("spec.readinessGates: expected a list")
    _check_affinity(spec.get("affinity"))


def _check_container(container: dict[str, Any], key: str, index: int) -> None:
    # Runs for every container of every admitted pod: one pass, names built only to fail.
    env = container.get("env")
    if env is not None:
        if not isinstance(env, list):
            raise InjectionError(f"spec.{key}[{index}].env: expected a list")
        for i, entry in enumerate(env):
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise InjectionError(
                    f"spec.{key}[{index}].env[{i}]: expected an object with a name"
                )
            value = entry.get("value")
            if value is not None and not isinstance(value, str):
                raise InjectionError(f"spec.{key}[{index}].env[{i}].value: expected a string")
    mounts = container.get("volumeMounts")
    if mounts is not None:
        _list_of_named(mounts, f"spec.{key}[{index}].volumeMounts")


def _check_affinity(affinity: Any) -> None:
    _mapping(affinity, "spec.affinity")
    node = (affinity or {}).get("nodeAffinity")
    _mapping(node, "spec.affinity.nodeAffinity")
    where = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
    required = (node or {}).get("requiredDuringSchedulingIgnoredDuringExecution")
    _mapping(required, where)
    terms = (required or {}).get("nodeSelectorTerms")
    if terms is None:
        return
    if not isinstance(terms, list):
        raise InjectionError(f"{where}.nodeSelectorTerms: expected a list")
    for i, term in enumerate(terms):
        if not isinstance(term, dict):
            raise InjectionError(f"{where}.nodeSelectorTerms[{i}]: expected an object")
        exprs = term.get("matchExpressions")
        if exprs is not None and not isinstance(exprs, list):
            raise InjectionError(
                f"{where}.nodeSelectorTerms[{i}].matchExpressions: expected a list"
            )
