"""inject(): the pod as it must run on VCL; patch(): the RFC 6902 ops that get there."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonpointer
import orjson

from injector.core import constants as c
from injector.core.annotations import PodSettings, parse_settings
from injector.core.config import InjectorConfig
from injector.core.errors import InjectionError
from injector.core.fragments import fragments_for
from injector.core.render import PodFragments
from injector.core.selection import Selection, is_native_sidecar, select_containers
from injector.core.shapes import check_pod
from injector.core.tree import copy_for_injection, list_at, mapping_at
from injector.core.undo import AFFINITY_EXPRESSION, READINESS_GATE, undo, wrapped_name

__all__ = ["InjectionError", "inject", "injection_patch", "patch"]


def inject(pod: Mapping[str, Any], config: InjectorConfig) -> dict[str, Any]:
    """Return a new pod with VCL injected. Idempotent: an injected pod is undone, then redone.

    Raises InvalidAnnotations (bad vcl.io/* values, all listed) or InjectionError.
    """
    return _inject(pod, config, share=False)


def injection_patch(
    original: Mapping[str, Any], view: Mapping[str, Any], config: InjectorConfig
) -> tuple[list[dict[str, Any]], str]:
    """The admission path: the ops turning `original` into `view` injected, and the
    vcl.io/status text. `view` is `original` as the core must see it (namespace filled
    in, say); a metadata key of `view` that `original` lacks is left out of the patch.

    The injected pod never leaves this function, so it holds the cached fragments
    themselves instead of copies (the ops' values refer to them: serialise, don't edit).
    """
    injected = _inject(view, config, share=True)
    meta = injected["metadata"]
    for key in (view.get("metadata") or {}).keys() - (original.get("metadata") or {}).keys():
        meta.pop(key, None)
    return patch(original, injected), meta["annotations"][c.ANNOTATION_STATUS]


def _inject(pod: Mapping[str, Any], config: InjectorConfig, *, share: bool) -> dict[str, Any]:
    if not isinstance(pod, dict | Mapping):  # dict first: the ABC check costs 10x more
        raise InjectionError("the object is not a pod: expected a mapping")
    check_pod(pod)
    out = copy_for_injection(pod)
    meta = mapping_at(out, "metadata")
    spec = out["spec"]
    undo(out)
    annotations = mapping_at(meta, "annotations")
    settings = parse_settings(annotations, config)
    selection = select_containers(spec, settings, config)
    frags = fragments_for(config, settings)
    status = _Status(config, settings, selection, frags)

    targets = _containers_named(spec, selection.names)
    # The fragments are cached and read-only: a pod that leaves gets fresh copies of them.
    if share:
        per_container = [(frags.container_env, frags.container_mounts) for _ in targets]
        init, sidecar, volumes = frags.init_container, frags.vpp_sidecar, frags.volumes
    else:
        per_container = [frags.container_copy() for _ in targets]
        init, sidecar, volumes = frags.pod_copy()
    for container, (env, mounts) in zip(targets, per_container, strict=True):
        _inject_container(container, env, mounts, frags, status)
    _check_free(spec, frags)
    spec["volumes"] = [*(spec.get("volumes") or []), *volumes]
    status.volumes = [v["name"] for v in volumes]
    _add_init_containers(spec, [init] if sidecar is None else [sidecar, init], selection, status)
    if settings.dataplane == "node":
        if config.node_affinity:
            _require_vpp_node(spec)
            status.record["nodeAffinity"] = True
        if config.readiness_gate:
            list_at(spec, "readinessGates").append(dict(READINESS_GATE))
            status.record["readinessGate"] = True
        added = [k for k in config.pod_annotations if k not in annotations]
        for key in added:
            annotations[key] = config.pod_annotations[key]
        if added:
            status.record["annotations"] = added
    if c.ANNOTATION_DEFAULT_CONTAINER not in annotations:
        annotations[c.ANNOTATION_DEFAULT_CONTAINER] = _default_container(spec, config)
        status.record["defaultContainer"] = True
    annotations[c.ANNOTATION_STATUS] = status.to_json()
    return out


def patch(original: Mapping[str, Any], injected: Mapping[str, Any]) -> list[dict[str, Any]]:
    """RFC 6902 operations turning `original` into `injected`.

    jsonpatch computes the ops for whatever is not a mapping or list, and jsonpointer
    escapes every path segment; we descend through mappings and lists ourselves (lists
    positionally), because jsonpatch's generic diff of a whole pod with its managedFields
    costs several times more than the injection itself.
    """
    ops: list[dict[str, Any]] = []
    _diff(original, injected, "", ops)
    return ops


def _diff(a: Any, b: Any, path: str, ops: list[dict[str, Any]]) -> None:
    # dict/list by exact type: JSON trees are made of them, and the ABC checks cost a
    # tenth of the time. inject() copies on write, so whatever it left alone is the very
    # same object in both trees and is skipped by identity, without a deep comparison.
    if type(a) is dict and type(b) is dict:
        same_keys = a.keys() == b.keys()  # compared in C: most objects keep their keys
        # In the objects' own key order, so that the same input gives the same patch.
        for key, x in a.items():
            if same_keys or key in b:
                y = b[key]
                if x is not y:
                    _diff(x, y, _join(path, key), ops)
            else:
                ops.append({"op": "remove", "path": _join(path, key)})
        if not same_keys:
            for key, y in b.items():
                if key not in a:
                    ops.append({"op": "add", "path": _join(path, key), "value": y})
        return
    if type(a) is list and type(b) is list:
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            if x is not y:
                _diff(x, y, f"{path}/{i}", ops)
        if len(b) > len(a):
            prefix = path + "/"
            for i in range(len(a), len(b)):
                ops.append({"op": "add", "path": prefix + str(i), "value": b[i]})
        else:
            for i in range(len(a) - 1, len(b) - 1, -1):
                ops.append({"op": "remove", "path": f"{path}/{i}"})
        return
    # Leaves (or a node replaced by another kind): 1 == True in Python, not in JSON.
    if type(a) is not type(b) or a != b:
        ops.append({"op": "replace", "path": path, "value": b})


def _join(path: str, key: str) -> str:
    if "~" in key or "/" in key:
        key = jsonpointer.escape(key)
    return f"{path}/{key}"


class _Status:
    """Collects what inject() did, for vcl.io/status (read by undo(), the agent, vcl-status)."""

    def __init__(
        self,
        config: InjectorConfig,
        settings: PodSettings,
        selection: Selection,
        frags: PodFragments,
    ) -> None:
        self.volumes: list[str] = []
        self.env: dict[str, dict[str, str]] = {}
        self.replaced: dict[str, list[list[Any]]] = {}
        self.warnings: list[str] = []
        self.record: dict[str, Any] = {
            "version": c.STATUS_VERSION,
            "runtimeVersion": config.runtime.version,
            "dataplane": settings.dataplane,
            "containers": list(selection.names),
            "selection": selection.reason,
            "settings": settings.as_annotation(),
            "prefixes": {
                c.ENV_LD_PRELOAD: frags.ld_preload,
                c.ENV_LD_LIBRARY_PATH: frags.ld_library_path,
            },
        }
        if not settings.eventfd:
            self.warnings.append(
                "eventfd is off: idle VCL apps poll VPP's message queues at 100% CPU"
            )
        if settings.dataplane == "pod":
            self.warnings.append(
                "dataplane pod: the pod's VPP has no interfaces of its own, so VCL serves "
                "pod-local (cut-through) traffic; other traffic needs the kernel rules"
            )

    def to_json(self) -> str:
        record = dict(self.record, volumes=self.volumes, env=self.env)
        if self.replaced:
            record["replacedEnv"] = self.replaced
        if self.warnings:
            record["warnings"] = self.warnings
        return orjson.dumps(record, option=orjson.OPT_SORT_KEYS).decode()


def _containers_named(spec: dict[str, Any], names: tuple[str, ...]) -> list[dict[str, Any]]:
    every = [*spec.get("containers", []), *(spec.get("initContainers") or [])]
    return [x for x in every if x["name"] in names]


def _inject_container(
    container: dict[str, Any],
    added_env: list[dict[str, Any]],
    added_mounts: list[dict[str, Any]],
    frags: PodFragments,
    status: _Status,
) -> None:
    name = container["name"]
    env = list_at(container, "env")
    mine = frags.env_names | {c.ENV_CONTAINER, c.ENV_LDP_APP_NAME}
    clashes = [[i, e] for i, e in enumerate(env) if e.get("name") in mine]
    if clashes:
        # Recorded so that undo() puts them back exactly where they were.
        status.replaced[name] = clashes
        status.warnings.append(
            f"container {name}: its own {', '.join(sorted(e['name'] for _, e in clashes))} "
            "replaced by the injector's"
        )
        env[:] = [e for e in env if e.get("name") not in mine]
    if container.get("envFrom"):
        status.warnings.append(
            f"container {name} has envFrom: an LD_PRELOAD or LD_LIBRARY_PATH set there is "
            "overridden by the injected one"
        )
    own = len(env)  # the app's own entries: ours never set the two variables below
    env.extend(added_env)
    env.append({"name": c.ENV_CONTAINER, "value": name})
    # VPP's app name: the container and its pod (VCL_POD_UID comes earlier in the list)
    env.append({"name": c.ENV_LDP_APP_NAME, "value": f"{name}-$({c.ENV_POD_UID})"})
    status.env[name] = {
        c.ENV_LD_PRELOAD: _prepend(env, own, c.ENV_LD_PRELOAD, frags.ld_preload),
        c.ENV_LD_LIBRARY_PATH: _prepend(env, own, c.ENV_LD_LIBRARY_PATH, frags.ld_library_path),
    }
    mounts = list_at(container, "volumeMounts")
    ours = frags.mount_paths
    for mount in mounts:
        if mount.get("mountPath") in ours:
            raise InjectionError(
                f"container {name}: volumeMount {mount.get('name')!r} already uses "
                f"{mount.get('mountPath')}, where the injector mounts the VCL files"
            )
    mounts.extend(added_mounts)


def _prepend(env: list[dict[str, Any]], own: int, name: str, prefix: str) -> str:
    """Put our libraries before the value the app's own entries (env[:own]) give; returns
    how (recorded for undo). The entry is replaced, not edited: entries are shared with
    the input pod."""
    for i in range(own):
        entry = env[i]
        if entry.get("name") != name:
            continue
        if "valueFrom" in entry:
            # Kubernetes expands $(VAR) of variables defined earlier in the list.
            env[i] = {**entry, "name": wrapped_name(name)}
            env.append({"name": name, "value": f"{prefix}:$({wrapped_name(name)})"})
            return "wrapped"
        env[i] = {**entry, "value": f"{prefix}:{entry.get('value', '')}"}
        return "prepended"
    env.append({"name": name, "value": prefix})
    return "added"


def _check_free(spec: dict[str, Any], frags: PodFragments) -> None:
    taken = {v.get("name") for v in spec.get("volumes") or []}
    for volume in frags.volumes:
        if volume["name"] in taken:
            raise InjectionError(
                f"spec.volumes: the pod already has a volume named {volume['name']!r}, which "
                "the injector needs; rename it"
            )
    inits = {x["name"] for x in spec.get("initContainers") or []}
    for name in (c.INIT_CONTAINER, c.VPP_CONTAINER):
        if name in inits or name in {x["name"] for x in spec["containers"]}:
            raise InjectionError(
                f"the pod already has a container named {name!r}, which the injector adds"
            )


def _add_init_containers(
    spec: dict[str, Any], added: list[dict[str, Any]], selection: Selection, status: _Status
) -> None:
    """Our init containers go after every init container that runs first, and before the
    first selected one (a mesh proxy as native sidecar needs vcl.conf when it starts)."""
    inits = list_at(spec, "initContainers")
    position = next((i for i, x in enumerate(inits) if x["name"] in selection.names), len(inits))
    inits[position:position] = added
    status.record["initContainers"] = [x["name"] for x in added]
    sidecars = [x["name"] for x in inits[position + len(added) :] if is_native_sidecar(x)]
    if sidecars and len(added) == 1:
        status.record["initContainersBefore"] = sidecars


def _require_vpp_node(spec: dict[str, Any]) -> None:
    """AND `vcl.io/vpp=ready` into every required node selector term (terms are ORed)."""
    node = mapping_at(mapping_at(spec, "affinity"), "nodeAffinity")
    required = mapping_at(node, "requiredDuringSchedulingIgnoredDuringExecution")
    terms = list_at(required, "nodeSelectorTerms")
    if not terms:
        terms.append({})
    for term in terms:
        list_at(term, "matchExpressions").append(
            {**AFFINITY_EXPRESSION, "values": list(AFFINITY_EXPRESSION["values"])}
        )


def _default_container(spec: dict[str, Any], config: InjectorConfig) -> str:
    names = [x["name"] for x in spec["containers"]]
    apps = [n for n in names if n not in config.sidecar_proxies]
    return str((apps or names)[0])
