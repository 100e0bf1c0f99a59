"""apply() against FakeVpp and a real directory tree: the law "after a successful apply,
the next plan is empty"; files (content, modes, atomic); the VPP namespace and socket;
VPP restart → same ids and secrets, vcl.conf untouched; pod gone → namespace, socket and
directory removed; capacity guard refuses the add that would exhaust VPP's heap; VPP
error replies are recorded, not raised."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from injected_pods import injected_pod

from injector.agent.apply import Applier, CapacityGuard
from injector.agent.hostfiles import HostFiles
from injector.agent.plan import AddNamespace, plan
from injector.agent.registration import desired
from vppctl_py import Vpp, VppDisconnected
from vppctl_py.testing import FakeVpp, HeapModel

MIB = 1024 * 1024


def reconcile(applier: Applier, pods: list[dict[str, Any]], root: Path) -> list[Any]:
    wanted, _ = desired(pods, str(root))
    results = applier.apply(plan(wanted, applier.observe()))
    return results


def test_register_then_nothing_left_to_do(vpp: Vpp, root: Path) -> None:
    pods = [injected_pod(f"p{i}") for i in range(3)]
    applier = Applier(vpp, HostFiles(str(root)))
    results = reconcile(applier, pods, root)
    assert results and all(r.ok for r in results), [
        (type(r.action).__name__, r.outcome, r.message) for r in results
    ]
    wanted, _ = desired(pods, str(root))
    assert plan(wanted, applier.observe()) == []
    by_id = {ns.ns_id: ns for ns in vpp.app_namespaces()}
    for pod in pods:
        uid = pod["metadata"]["uid"]
        directory = root / "pods" / uid
        ns = by_id[f"vcl-{uid}"]
        assert ns.sock_name == str(directory / "app.sock")
        assert stat.S_ISSOCK((directory / "app.sock").stat().st_mode)
        env = (directory / "vcl.env").read_text()
        assert f"VCL_APP_NAMESPACE_ID=vcl-{uid}\n" in env
        assert f"VCL_APP_NAMESPACE_SECRET={ns.secret}\n" in env
        assert ns.secret != 0
        assert (directory / "vcl.env").stat().st_mode & 0o777 == 0o600
        assert (directory / "vcl.conf").stat().st_mode & 0o777 == 0o600
        assert directory.stat().st_mode & 0o777 == 0o711
        assert "app-socket-api /etc/vcl/app.sock" in (directory / "vcl.conf").read_text()
    assert not list(root.rglob(".*.tmp"))


def test_fs_group_makes_files_group_readable(vpp: Vpp, root: Path) -> None:
    pod = injected_pod("grp", security={"runAsUser": 1000, "fsGroup": 2000})
    assert all(r.ok for r in reconcile(Applier(vpp, HostFiles(str(root))), [pod], root))
    directory = root / "pods" / pod["metadata"]["uid"]
    assert (directory / "vcl.conf").stat().st_mode & 0o777 == 0o640
    assert (directory / "app.sock").stat().st_mode & 0o777 == 0o660


def test_vpp_restart_recreates_namespaces_with_the_same_ids_and_secrets(
    fake: FakeVpp, vpp: Vpp, root: Path
) -> None:
    pods = [injected_pod("a"), injected_pod("b")]
    applier = Applier(vpp, HostFiles(str(root)))
    reconcile(applier, pods, root)
    before = {ns.ns_id: ns.secret for ns in vpp.app_namespaces() if ns.ns_id.startswith("vcl-")}
    confs = {p: p.stat().st_mtime_ns for p in root.rglob("vcl.conf")}
    fake.restart()
    with pytest.raises(VppDisconnected):
        vpp.app_namespaces()
    vpp.reconnect()
    assert [ns.ns_id for ns in vpp.app_namespaces()] == ["default"]
    results = reconcile(applier, pods, root)
    assert [type(r.action) for r in results] == [AddNamespace, AddNamespace]
    after = {ns.ns_id: ns.secret for ns in vpp.app_namespaces() if ns.ns_id.startswith("vcl-")}
    assert after == before
    assert {p: p.stat().st_mtime_ns for p in root.rglob("vcl.conf")} == confs
    wanted, _ = desired(pods, str(root))
    assert plan(wanted, applier.observe()) == []


def test_deleted_pod_leaves_nothing_behind(vpp: Vpp, root: Path) -> None:
    keep, gone = injected_pod("keep"), injected_pod("gone")
    applier = Applier(vpp, HostFiles(str(root)))
    reconcile(applier, [keep, gone], root)
    results = reconcile(applier, [keep], root)
    assert all(r.ok for r in results)
    ids = {ns.ns_id for ns in vpp.app_namespaces()}
    assert f"vcl-{gone['metadata']['uid']}" not in ids and f"vcl-{keep['metadata']['uid']}" in ids
    assert not (root / "pods" / gone["metadata"]["uid"]).exists()
    assert (root / "pods" / keep["metadata"]["uid"] / "app.sock").exists()


@pytest.fixture
def small_heap() -> HeapModel:
    # Room for VPP itself, the guard's reserve and two namespaces, not a third.
    return HeapModel(size=55 * MIB + 32 * MIB + 2 * 7 * MIB + 3 * MIB)


@pytest.mark.parametrize("heap", [HeapModel(size=55 * MIB + 32 * MIB + 2 * 7 * MIB + 3 * MIB)])
def test_capacity_guard_refuses_the_add_that_would_kill_vpp(
    fake: FakeVpp, vpp: Vpp, root: Path, heap: HeapModel
) -> None:
    pods = [injected_pod(f"c{i}") for i in range(4)]
    applier = Applier(vpp, HostFiles(str(root)), capacity=CapacityGuard())
    results = reconcile(applier, pods, root)
    adds = [r for r in results if isinstance(r.action, AddNamespace)]
    assert [r.outcome for r in adds] == ["ok", "ok", "capacity", "capacity"]
    assert "main heap" in adds[2].message and "startup.conf" in adds[2].message
    assert fake.crashed is None
    assert vpp.ping().vpe_pid == fake.pid


def test_the_guard_learns_the_real_cost(fake: FakeVpp, vpp: Vpp, root: Path) -> None:
    guard = CapacityGuard(estimate=1 * MIB)
    reconcile(Applier(vpp, HostFiles(str(root)), capacity=guard), [injected_pod("x")], root)
    assert guard.cost >= 7 * MIB - MIB // 100  # the fake's (as measured) ~7 MB per namespace


def test_no_vcl_conf_without_a_namespace(vpp: Vpp, tmp_path: Path) -> None:
    """A root so long that the socket name cannot be valid: VPP is never asked, and the
    pod gets no vcl.conf (its go-ahead), so its app does not start against no socket."""
    root = tmp_path / ("x" * 60)
    pod = injected_pod("long")
    results = reconcile(Applier(vpp, HostFiles(str(root))), [pod], root)
    assert [r.outcome for r in results] == ["invalid", "skipped"]
    assert "sock_name" in results[0].message and "107" in results[0].message
    assert not (root / "pods" / pod["metadata"]["uid"] / "vcl.conf").exists()
    assert [ns.ns_id for ns in vpp.app_namespaces()] == ["default"]
