"""Laws of injection, over generated pods (hypothesis):

- inject(inject(p)) == inject(p) (idempotent, also after a mesh proxy is added between);
- applying patch(p, inject(p)) to p gives inject(p);
- inject never changes its input;
- containers that are not selected are left exactly as they were.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
from hypothesis import given, settings
from hypothesis import strategies as st

from injector.core import InjectorConfig, inject, injection_patch, parse_settings, patch
from injector.core.fragments import fragments_for
from injector.core.render import render_fragments

CONFIG = InjectorConfig()

names = st.sampled_from(["app", "web", "worker", "istio-proxy", "db", "side"])
env_entry = st.one_of(
    st.builds(
        lambda n, v: {"name": n, "value": v},
        st.sampled_from(["LD_PRELOAD", "LD_LIBRARY_PATH", "MODE", "VCL_CONFIG", "PATH"]),
        st.text(alphabet="/abc.:$()", max_size=12),
    ),
    st.builds(
        lambda n: {"name": n, "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}},
        st.sampled_from(["LD_PRELOAD", "LD_LIBRARY_PATH", "OTHER"]),
    ),
)


def _unique(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for entry in entries:
        seen.setdefault(entry["name"], entry)
    return list(seen.values())


def container(name: str, env: list[dict[str, Any]], envfrom: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "image": f"example/{name}:1"}
    if env:
        out["env"] = _unique(env)
    if envfrom:
        out["envFrom"] = [{"configMapRef": {"name": "cm"}}]
    return out


containers = st.lists(
    st.builds(container, names, st.lists(env_entry, max_size=4), st.booleans()),
    min_size=1,
    max_size=4,
    unique_by=lambda c: c["name"],
)
init_containers = st.lists(
    st.builds(
        lambda n, native: {
            "name": n,
            "image": "i",
            **({"restartPolicy": "Always"} if native else {}),
        },
        st.sampled_from(["istio-init", "istio-proxy", "migrate", "native-agent"]),
        st.booleans(),
    ),
    max_size=3,
    unique_by=lambda c: c["name"],
)
annotations = st.fixed_dictionaries(
    {},
    optional={
        "vcl.io/dataplane": st.sampled_from(["node", "pod"]),
        "vcl.io/rx-fifo-size": st.sampled_from(["64Ki", "4Mi", "100000"]),
        "vcl.io/eventfd": st.sampled_from(["true", "false"]),
        "vcl.io/kernel-cidrs": st.sampled_from(["10.0.0.0/8", "", "fd00::/8,192.0.2.0/24"]),
        "vcl.io/kernel-ports": st.sampled_from(["53", "80,443"]),
        "vcl.io/app-scope": st.sampled_from(["local", "global", "both"]),
        "kubectl.kubernetes.io/default-container": names,
        "example.com/other": st.text(max_size=5),
    },
)
affinity = st.sampled_from(
    [
        None,
        {},
        {"podAntiAffinity": {}},
        {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "z", "operator": "In", "values": ["a"]}]},
                        {
                            "matchFields": [
                                {"key": "metadata.name", "operator": "In", "values": ["n"]}
                            ]
                        },
                    ]
                }
            }
        },
    ]
)


@st.composite
def pods(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": draw(containers)}
    inits = [
        i for i in draw(init_containers) if i["name"] not in {c["name"] for c in spec["containers"]}
    ]
    if inits:
        spec["initContainers"] = inits
    aff = draw(affinity)
    if aff is not None:
        spec["affinity"] = aff
    if draw(st.booleans()):
        spec["readinessGates"] = [{"conditionType": "example.com/x"}]
    if draw(st.booleans()):
        spec["volumes"] = [{"name": "data", "emptyDir": {}}]
    meta: dict[str, Any] = {"name": "p", "namespace": "demo"}
    ann = draw(annotations)
    if ann:
        meta["annotations"] = ann
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


@settings(max_examples=300, deadline=None)
@given(pods())
def test_inject_is_idempotent(pod: dict[str, Any]) -> None:
    once = inject(pod, CONFIG)
    assert inject(once, CONFIG) == once


@settings(max_examples=300, deadline=None)
@given(pods())
def test_patch_applied_to_the_original_gives_the_injected_pod(pod: dict[str, Any]) -> None:
    injected = inject(pod, CONFIG)
    assert jsonpatch.apply_patch(pod, patch(pod, injected)) == injected


@settings(max_examples=200, deadline=None)
@given(pods())
def test_the_admission_patch_is_the_patch_to_the_injected_pod(pod: dict[str, Any]) -> None:
    # The webhook's path: the view has a namespace the request gave, the object none.
    original = {**pod, "metadata": {k: v for k, v in pod["metadata"].items() if k != "namespace"}}
    ops, status = injection_patch(original, pod, CONFIG)
    injected = inject(pod, CONFIG)
    del injected["metadata"]["namespace"]
    assert jsonpatch.apply_patch(original, ops) == injected
    assert status == injected["metadata"]["annotations"]["vcl.io/status"]


def test_the_admission_patch_shares_the_cached_fragments_without_changing_them() -> None:
    # injection_patch() puts the cached fragments themselves in its ops (no copy per pod):
    # whatever a pod has already (its own LD_PRELOAD, clashing env, an affinity, an
    # earlier injection) must leave them as rendered.
    pod = {
        "metadata": {"name": "p", "namespace": "demo"},
        "spec": {
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{}]}
                }
            },
            "containers": [
                {
                    "name": "a",
                    "env": [
                        {"name": "LD_PRELOAD", "value": "/x.so"},
                        {"name": "VCL_CONFIG", "value": "mine"},
                    ],
                },
                {
                    "name": "b",
                    "env": [
                        {"name": "LD_LIBRARY_PATH", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}
                    ],
                },
            ],
        },
    }
    ops, _ = injection_patch(pod, pod, CONFIG)
    once = jsonpatch.apply_patch(pod, ops)
    injection_patch(once, once, CONFIG)  # re-injection undoes the first one
    used = parse_settings({}, CONFIG)
    assert fragments_for(CONFIG, used) == render_fragments(CONFIG, used)


@settings(max_examples=150, deadline=None)
@given(pods())
def test_inject_does_not_change_its_input(pod: dict[str, Any]) -> None:
    before = copy.deepcopy(pod)
    inject(pod, CONFIG)
    assert pod == before


@settings(max_examples=150, deadline=None)
@given(pods())
def test_unselected_containers_are_untouched(pod: dict[str, Any]) -> None:
    injected = inject(pod, CONFIG)
    import json

    selected = json.loads(injected["metadata"]["annotations"]["vcl.io/status"])["containers"]
    for before in pod["spec"]["containers"]:
        if before["name"] not in selected:
            after = next(c for c in injected["spec"]["containers"] if c["name"] == before["name"])
            assert after == before


@settings(max_examples=150, deadline=None)
@given(pods())
def test_reinjection_after_a_mesh_adds_its_proxy_selects_the_proxy(pod: dict[str, Any]) -> None:
    spec = pod["spec"]
    names = {c["name"] for c in spec["containers"]} | {
        c["name"] for c in spec.get("initContainers", [])
    }
    if "istio-proxy" in names or pod["metadata"].get("annotations", {}).get("vcl.io/dataplane"):
        return
    first = inject(pod, CONFIG)
    first["spec"]["containers"].append({"name": "istio-proxy", "image": "proxyv2"})
    second = inject(first, CONFIG)
    proxy = second["spec"]["containers"][-1]
    assert any(e["name"] == "LD_PRELOAD" for e in proxy["env"])
    for app in second["spec"]["containers"][:-1]:
        original = next(c for c in pod["spec"]["containers"] if c["name"] == app["name"])
        assert app == original
    assert inject(second, CONFIG) == second


# JSON trees whose keys and strings need pointer escaping ("~" -> ~0, "/" -> ~1).
escaping_json = st.recursive(
    st.none() | st.integers() | st.text(alphabet="a~/", max_size=3),
    lambda kids: (
        st.lists(kids, max_size=3)
        | st.dictionaries(st.text(alphabet="ab~/", max_size=3), kids, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(escaping_json, escaping_json)
def test_patch_is_exact_for_any_json_incl_keys_with_slash_and_tilde(a: Any, b: Any) -> None:
    """patch() walks mappings and lists itself; pointers with ~0/~1 must still be right."""
    doc = {"root": a}
    assert jsonpatch.apply_patch(doc, patch(doc, {"root": b})) == {"root": b}
