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
- manifests/build.py against `kubectl kustomize` for every overlay, object for object
  (runs only where kubectl is on PATH: CI machines have none);
- the renderer's strategic merge (merge by key, $patch: delete, replace) and its refusal
  of kustomize features it does not implement.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import pytest
import yaml

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
K8S_VERSION = "1.29.0"
# CRDs: kubernetes-validate knows only built-in kinds. cert-manager's kinds are checked by
# cert-manager's own admission webhook at apply time.
CRD_GROUPS = {"cert-manager.io"}
OVERLAYS = ["calico-vpp", "cert-manager", "dedicated", "default"]


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
    overlays: dict[str, list[dict[str, Any]]], kbuild: ModuleType, overlay: str
) -> None:
    for obj in overlays[overlay]:
        namespace = obj["metadata"].get("namespace")
        if obj["kind"] in kbuild.CLUSTER_SCOPED:
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


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not on PATH (CI has none)")
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_build_py_renders_what_kubectl_kustomize_renders(
    overlays: dict[str, list[dict[str, Any]]], kbuild: ModuleType, overlay: str
) -> None:
    out = subprocess.run(
        ["kubectl", "kustomize", str(MANIFESTS / overlay)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    theirs = {kbuild.object_id(o): o for o in yaml.safe_load_all(out) if o}
    ours = {kbuild.object_id(o): o for o in overlays[overlay]}
    assert sorted(ours) == sorted(theirs)
    for key, obj in ours.items():
        assert obj == theirs[key], key


BASE_POD = {
    "containers": [
        {"name": "a", "args": ["x", "y"], "volumeMounts": [{"name": "v", "mountPath": "/v"}]},
        {"name": "b", "image": "b:1"},
    ],
    "volumes": [{"name": "v", "hostPath": {"path": "/old", "type": "DirectoryOrCreate"}}],
    "tolerations": [{"operator": "Exists"}],
}


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        (  # containers merge by name; a primitive list (args) is replaced whole
            {"containers": [{"name": "a", "args": ["z"]}]},
            {
                **BASE_POD,
                "containers": [
                    {**BASE_POD["containers"][0], "args": ["z"]},
                    BASE_POD["containers"][1],
                ],
            },
        ),
        (  # as kubectl kustomize does: the patch's items first, then the base's others
            {"containers": [{"name": "c", "image": "c:1"}]},
            {**BASE_POD, "containers": [{"name": "c", "image": "c:1"}, *BASE_POD["containers"]]},
        ),
        (
            {"containers": [{"name": "c", "image": "c:1"}, {"name": "b", "args": ["q"]}]},
            {
                **BASE_POD,
                "containers": [
                    {"name": "c", "image": "c:1"},
                    {**BASE_POD["containers"][1], "args": ["q"]},
                    BASE_POD["containers"][0],
                ],
            },
        ),
        (  # $patch: delete removes the item with that key
            {"containers": [{"name": "b", "$patch": "delete"}]},
            {**BASE_POD, "containers": [BASE_POD["containers"][0]]},
        ),
        (  # maps merge inside a keyed item
            {"volumes": [{"name": "v", "hostPath": {"path": "/new"}}]},
            {
                **BASE_POD,
                "volumes": [
                    {"name": "v", "hostPath": {"path": "/new", "type": "DirectoryOrCreate"}}
                ],
            },
        ),
        (  # a list without a merge key is replaced; null deletes a key
            {"tolerations": [{"key": "k", "operator": "Exists"}], "volumes": None},
            {
                "containers": BASE_POD["containers"],
                "tolerations": [{"key": "k", "operator": "Exists"}],
            },
        ),
    ],
)
def test_strategic_merge(kbuild: ModuleType, patch: dict[str, Any], expected: Any) -> None:
    assert kbuild.strategic_merge(BASE_POD, patch) == expected


def test_strategic_merge_leaves_its_inputs_alone(kbuild: ModuleType) -> None:
    before = yaml.safe_dump(BASE_POD)
    kbuild.strategic_merge(BASE_POD, {"containers": [{"name": "a", "args": []}]})
    assert yaml.safe_dump(BASE_POD) == before


@pytest.mark.parametrize(
    ("kustomization", "message"),
    [
        ({"commonLabels": {"a": "b"}}, "commonLabels"),
        (
            {"patches": [{"path": "p.yaml", "target": {"kind": "Deployment"}}]},
            "only patches with a path",
        ),
        ({"kind": "Component"}, "kind Component used as a resource"),
    ],
)
def test_build_refuses_what_it_does_not_do(
    kbuild: ModuleType, tmp_path: Path, kustomization: dict[str, Any], message: str
) -> None:
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    with pytest.raises(kbuild.BuildError, match=message):
        kbuild.build(tmp_path)


def test_build_refuses_a_patch_that_matches_nothing(kbuild: ModuleType, tmp_path: Path) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}
    (tmp_path / "cm.yaml").write_text(yaml.safe_dump(cm))
    (tmp_path / "p.yaml").write_text(yaml.safe_dump({**cm, "metadata": {"name": "b"}}))
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump({"resources": ["cm.yaml"], "patches": [{"path": "p.yaml"}]})
    )
    with pytest.raises(kbuild.BuildError, match="matches 0 objects"):
        kbuild.build(tmp_path)
