"""Renders a kustomization of manifests/ like `kubectl kustomize`, for machines without it.

    python3 manifests/build.py manifests/default   # the objects, as multi-document YAML

Only the features manifests/ uses are supported, and anything else in a kustomization is
refused with its name, so a new feature cannot be silently mis-rendered:
  - `resources`: YAML files and directories holding a kustomization;
  - `components`: directories holding a `kind: Component` (their resources are added and
    their patches applied to everything accumulated so far, as kustomize does);
  - `patches` with only `path`: strategic-merge patches, matched to an object by apiVersion
    group, kind, name and (for namespaced kinds) namespace;
  - `namespace`: set on every namespaced object, on ServiceAccount subjects of
    (Cluster)RoleBindings and on the Services that webhook configurations call.
tests/manifests checks this renderer against `kubectl kustomize` where kubectl exists.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION = "kustomization.yaml"
KNOWN_KEYS = {"apiVersion", "kind", "resources", "components", "patches", "namespace"}

# Kinds without a namespace among those manifests/ uses; any other kind is namespaced
# (as kustomize assumes for kinds it does not know, e.g. cert-manager's).
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "CustomResourceDefinition",
    "PriorityClass",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
}

# Strategic-merge keys of the lists manifests/ patches (Kubernetes' patchMergeKey tags);
# every other list is replaced whole, as strategic merge does for lists without one.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "webhooks": "name",
}


class BuildError(ValueError):
    """The kustomization uses something this renderer does not do; the message says what."""


def object_id(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    """(group, kind, namespace, name): how kustomize tells objects apart."""
    group = obj["apiVersion"].rpartition("/")[0]
    meta = obj.get("metadata", {})
    return group, obj["kind"], meta.get("namespace", ""), meta["name"]


def load_yaml(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def strategic_merge(base: Any, patch: Any, field: str = "") -> Any:
    """`patch` merged into a copy of `base` (Kubernetes strategic merge, the parts used)."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = copy.deepcopy(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = strategic_merge(out[key], value, key)
            else:
                out[key] = copy.deepcopy(value)
        return out
    if isinstance(base, list) and isinstance(patch, list) and field in MERGE_KEYS:
        return _merge_list(base, patch, MERGE_KEYS[field])
    return copy.deepcopy(patch)


def _merge_list(base: list[Any], patch: list[Any], key: str) -> list[Any]:
    """Like kustomize (kyaml): the patch's items first, in its order (merged into the base
    item of the same key), then the base items the patch does not name."""
    named: list[Any] = []
    seen: set[Any] = set()
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise BuildError(f"list item without merge key {key!r}: {item!r}")
        seen.add(item[key])
        if item.get("$patch") == "delete":
            continue
        old = next((o for o in base if o.get(key) == item[key]), None)
        named.append(copy.deepcopy(item) if old is None else strategic_merge(old, item))
    return named + [copy.deepcopy(o) for o in base if o.get(key) not in seen]


def _apply_patch_file(objects: list[dict[str, Any]], path: Path) -> None:
    for patch in load_yaml(path):
        wanted = object_id(patch)
        matches = [i for i, obj in enumerate(objects) if _same(object_id(obj), wanted)]
        if len(matches) != 1:
            raise BuildError(f"{path}: patch for {wanted} matches {len(matches)} objects")
        objects[matches[0]] = strategic_merge(objects[matches[0]], patch)


def _same(have: tuple[str, ...], want: tuple[str, ...]) -> bool:
    # A patch without a namespace matches the object whatever its namespace.
    return have[:2] == want[:2] and have[3] == want[3] and want[2] in ("", have[2])


def _set_namespace(obj: dict[str, Any], namespace: str) -> None:
    if obj["kind"] not in CLUSTER_SCOPED:
        obj.setdefault("metadata", {})["namespace"] = namespace
    if obj["kind"] in ("RoleBinding", "ClusterRoleBinding"):
        for subject in obj.get("subjects", []):
            if subject.get("kind") == "ServiceAccount":
                subject["namespace"] = namespace
    if obj["kind"] in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        for hook in obj.get("webhooks", []):
            service = hook.get("clientConfig", {}).get("service")
            if service is not None:
                service["namespace"] = namespace


def build(directory: Path) -> list[dict[str, Any]]:
    """The objects the kustomization in `directory` renders to."""
    return _build(directory, [], component=False)


def _build(
    directory: Path, inherited: list[dict[str, Any]], *, component: bool
) -> list[dict[str, Any]]:
    spec_path = directory / KUSTOMIZATION
    if not spec_path.is_file():
        raise BuildError(f"{directory}: no {KUSTOMIZATION}")
    spec = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    unknown = set(spec) - KNOWN_KEYS
    if unknown:
        raise BuildError(f"{spec_path}: not supported here: {', '.join(sorted(unknown))}")
    kind = spec.get("kind", "Kustomization")
    if (kind == "Component") != component:
        raise BuildError(
            f"{spec_path}: kind {kind} used as a {'component' if component else 'resource'}"
        )

    objects = inherited
    for entry in spec.get("resources", []):
        target = (directory / entry).resolve()
        objects.extend(build(target) if target.is_dir() else load_yaml(target))
    for entry in spec.get("components", []):
        objects = _build((directory / entry).resolve(), objects, component=True)
    for patch in spec.get("patches", []):
        if set(patch) != {"path"}:
            raise BuildError(f"{spec_path}: only patches with a path are supported: {patch}")
        _apply_patch_file(objects, directory / patch["path"])
    if "namespace" in spec:
        for obj in objects:
            _set_namespace(obj, spec["namespace"])
    seen: set[tuple[str, str, str, str]] = set()
    for obj in objects:
        if object_id(obj) in seen:
            raise BuildError(f"{directory}: {object_id(obj)} defined twice")
        seen.add(object_id(obj))
    return objects


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: build.py KUSTOMIZATION_DIR", file=sys.stderr)
        return 2
    try:
        objects = build(Path(argv[0]).resolve())
    except (BuildError, OSError, yaml.YAMLError) as exc:
        print(f"build.py: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(yaml.safe_dump_all(objects, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
