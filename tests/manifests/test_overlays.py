"""Every overlay of manifests/ renders and every object is valid Kubernetes 1.29.

Covers:
- the set of overlays (default, dedicated, cert-manager, calico-vpp) and that every
  component is used by one of them, so nothing in manifests/ goes unrendered;
- each rendered object validated against the Kubernetes 1.29 OpenAPI schema with
  kubernetes-validate in strict mode (unknown fields fail); cert-manager's Issuer and
  Certificate are CRDs the schema does not have and are skipped, and only they;
- that the validator really rejects a misspelt field (so the check can fail);
- every object in vcl-system except the cluster-scoped ones, and every object labelled
  app.kubernetes.io/part-of=vcl-injector (docs/uninstall.md finds leftovers by it);
- every overlay rendered by `kubectl kustomize`, exactly what `kubectl apply -k` applies
  (kubectl is on every machine this project runs on, and in every cluster toolchain).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
K8S_VERSION = "1.29.0"
# CRDs: kubernetes-validate knows only built-in kinds. cert-manager's kinds are checked by
# cert-manager's own admission webhook at apply time.
CRD_GROUPS = {"cert-manager.io"}
OVERLAYS = ["adaptive", "calico-vpp", "cert-manager", "dedicated", "default"]
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration"}


def _kinds(objects: list[dict[str, Any]]) -> set[str]:
    return {obj["kind"] for obj in objects}


def test_the_overlays_are_the_documented_ones(overlays: dict[str, list[dict[str, Any]]]) -> None:
    assert sorted(overlays) == OVERLAYS


def test_every_component_is_used_by_an_overlay() -> None:
    used: set[str] = set()
    for name in OVERLAYS:
        spec = yaml.safe_load((MANIFESTS / name / "kustomization.yaml").read_text())
        used |= {Path(c).name for c in spec.get("components", [])}
    assert used == {p.name for p in (MANIFESTS / "components").iterdir() if p.is_dir()}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_kubernetes(
    overlays: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    skipped = []
    for obj in overlays[overlay]:
        if obj["apiVersion"].split("/")[0] in CRD_GROUPS:
            skipped.append(obj["kind"])
            continue
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    assert set(skipped) <= {"Issuer", "Certificate"}
    assert bool(skipped) == (overlay == "cert-manager")


def test_the_validator_rejects_a_misspelt_field(overlays: dict[str, list[dict[str, Any]]]) -> None:
    deployment = next(o for o in overlays["default"] if o["kind"] == "Deployment")
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_everything_namespaced_is_in_vcl_system(
    overlays: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    for obj in overlays[overlay]:
        namespace = obj["metadata"].get("namespace")
        if obj["kind"] in CLUSTER_SCOPED:
            assert namespace is None, obj["metadata"]["name"]
        else:
            assert namespace == "vcl-system", (obj["kind"], obj["metadata"]["name"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_everything_is_labelled_part_of_vcl_injector(
    overlays: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    for obj in overlays[overlay]:
        labels = obj["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/part-of") == "vcl-injector", object_name(obj)


def object_name(obj: dict[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"
