"""The node VPP's startup.conf ConfigMaps: generated from templates/, sized, wired.

Covers:
- the committed ConfigMaps equal what manifests/render.py renders from
  templates/startup.conf.j2 (they never drift), and `render.py --check` says so and
  fails on a stale file;
- the CPU profiles: shared has poll-sleep-usec 100, dedicated polls (poll-sleep-usec 0, stated),
  and the dedicated overlay's VPP gets a whole core with Guaranteed QoS;
- sizing: every session table line at 2M, and a main heap that fits 110 pods' app
  namespaces at least twice over (the documented formula), and the VPP container's memory
  limit above heap plus buffers;
- no DPDK, 4k pages (no hugepages requested anywhere);
- the sockets in startup.conf are where the agent looks (API socket) and under the host
  directories the VPP pod mounts; the runtime dir is the agent's per-pod root.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

Objects = dict[str, list[dict[str, Any]]]
QUANTITY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "M": 2**20, "G": 2**30}


def startup_conf(overlays: Objects, overlay: str) -> str:
    cm = next(o for o in overlays[overlay] if o["metadata"]["name"] == "vcl-vpp-startup")
    return str(cm["data"]["startup.conf"])


def vpp_container(overlays: Objects, overlay: str) -> dict[str, Any]:
    ds = next(
        o
        for o in overlays[overlay]
        if o["kind"] == "DaemonSet" and o["metadata"]["name"] == "vcl-vpp"
    )
    return dict(ds["spec"]["template"]["spec"]["containers"][0])


def to_bytes(quantity: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([A-Za-z]*)", quantity).groups()  # type: ignore[union-attr]
    return int(number) * QUANTITY.get(unit, 1)


def directive(conf: str, name: str) -> list[str]:
    return [
        line.split(None, 1)[1] for line in conf.splitlines() if line.strip().startswith(name + " ")
    ]


def test_committed_configmaps_are_what_the_template_renders(vpp_render: ModuleType) -> None:
    rendered = vpp_render.render_all()
    assert len(rendered) == len(vpp_render.PROFILES) == 3
    for path, text in rendered.items():
        assert path.read_text(encoding="utf-8") == text, f"{path}: run python3 manifests/render.py"
        assert yaml.safe_load(text)["data"]["startup.conf"].endswith("}\n")
    assert vpp_render.main(["--check"]) == 0


def test_check_fails_on_a_stale_configmap(
    vpp_render: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = tmp_path / "startup-conf.yaml"
    stale.write_text("stale\n")
    profile = vpp_render.PROFILES[0]
    monkeypatch.setattr(
        vpp_render, "PROFILES", (type(profile)(**{**profile.__dict__, "path": stale}),)
    )
    assert vpp_render.main(["--check"]) == 1
    assert stale.read_text() == "stale\n", "--check must not write"
    assert vpp_render.main([]) == 0
    assert vpp_render.main(["--check"]) == 0


@pytest.mark.parametrize(
    ("overlay", "sleep"), [("default", ["100"]), ("cert-manager", ["100"]), ("dedicated", ["0"])]
)
def test_cpu_profiles(overlays: Objects, overlay: str, sleep: list[str]) -> None:
    conf = startup_conf(overlays, overlay)
    assert directive(conf, "poll-sleep-usec") == sleep
    resources = vpp_container(overlays, overlay)["resources"]
    if overlay == "dedicated":
        assert resources["requests"] == resources["limits"], "Guaranteed QoS"
        assert resources["requests"]["cpu"] == "1"
    else:
        assert "cpu" not in resources["limits"], "a CPU limit throttles the main loop"


@pytest.mark.parametrize("overlay", ["default", "dedicated"])
def test_sized_for_110_pods_with_headroom(
    overlays: Objects, vpp_render: ModuleType, overlay: str
) -> None:
    conf = startup_conf(overlays, overlay)
    tables = [line for line in conf.splitlines() if "-table-" in line]
    assert len(tables) == 8  # v4/v6 x session/halfopen x buckets/memory
    assert all(line.split()[1] == "2M" for line in tables if "-memory" in line)
    (heap,) = directive(conf, "main-heap-size")
    heap_mb = to_bytes(heap) // 2**20
    assert heap_mb >= vpp_render.heap_needed_mb(110)
    assert vpp_render.namespaces_that_fit(heap_mb) >= 2 * 110
    (buffers,) = directive(conf, "buffers-per-numa")
    limit = to_bytes(vpp_container(overlays, overlay)["resources"]["limits"]["memory"])
    assert limit > to_bytes(heap) + int(buffers) * 2304  # 2 KB data + header per buffer


def test_the_formula(vpp_render: ModuleType) -> None:
    # 64 MB base + 110 namespaces x 0.65 MB x 2 headroom
    assert vpp_render.heap_needed_mb(110) == pytest.approx(207.0)
    assert vpp_render.namespaces_that_fit(512) == 689


@pytest.mark.parametrize("overlay", ["default", "dedicated"])
def test_no_dpdk_no_hugepages(overlays: Objects, overlay: str) -> None:
    conf = startup_conf(overlays, overlay)
    assert "plugin dpdk_plugin.so { disable }" in conf
    assert "dpdk {" not in conf
    assert directive(conf, "main-heap-page-size") == ["4k"]
    assert directive(conf, "page-size") == ["4k"]
    for overlay_objects in overlays.values():
        for obj in overlay_objects:
            assert "hugepages" not in yaml.safe_dump(obj).lower()


@pytest.mark.parametrize("overlay", ["default", "dedicated"])
def test_sockets_are_where_the_agent_looks(overlays: Objects, overlay: str) -> None:
    conf = startup_conf(overlays, overlay)
    agent = next(
        o
        for o in overlays[overlay]
        if o["kind"] == "DaemonSet" and o["metadata"]["name"] == "vcl-agent"
    )
    args = agent["spec"]["template"]["spec"]["containers"][0]["args"]
    opts = dict(zip(args[1::2], args[2::2], strict=True))
    assert directive(conf, "socket-name")[0] == opts["--vpp-api-socket"]
    assert directive(conf, "runtime-dir") == [opts["--root"]]
    mounted = {m["mountPath"] for m in vpp_container(overlays, overlay)["volumeMounts"]}
    for path in [*directive(conf, "socket-name"), *directive(conf, "cli-listen")]:
        assert str(Path(path).parent) in mounted
