"""Failures the client must report clearly: socket missing or refused, API definitions
missing, VPP restarting (VppDisconnected, then
reconnect with backoff), VPP crashing on a hazardous delete, and the main heap running
out (the fake dies like VPP aborts)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from vppctl_py import (
    Backoff,
    Vpp,
    VppApiDefinitionsError,
    VppConnectError,
    VppDisconnected,
    VppTimeout,
    connect_with_backoff,
)
from vppctl_py.testing import FakeVpp, HeapModel


def test_missing_socket(tmp_path: Path) -> None:
    with pytest.raises(VppConnectError, match="no such socket") as err:
        Vpp.connect(str(tmp_path / "api.sock"))
    assert err.value.api_socket == str(tmp_path / "api.sock")


def test_refused_socket(tmp_path: Path) -> None:
    path = tmp_path / "api.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens: what a dead VPP leaves behind
    with pytest.raises(VppConnectError, match="connection refused"):
        Vpp.connect(str(path))


def test_missing_api_definitions(fake: FakeVpp, tmp_path: Path) -> None:
    with pytest.raises(VppApiDefinitionsError, match="not a directory"):
        Vpp.connect(fake.api_socket, api_dir=tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(VppApiDefinitionsError, match=r"no \*\.api\.json"):
        Vpp.connect(fake.api_socket, api_dir=tmp_path / "empty")


def test_restart_raises_disconnected_then_reconnect_resyncs(
    fake: FakeVpp, vpp: Vpp, sock_dir: Path
) -> None:
    vpp.add_app_namespace("t", 1, str(sock_dir / "t"))
    pid = vpp.ping().vpe_pid
    fake.restart()
    with pytest.raises(VppDisconnected):
        vpp.ping()
    assert not vpp.connected
    with pytest.raises(VppDisconnected):  # at once, without touching the socket
        vpp.app_namespaces()
    vpp.reconnect(Backoff(attempts=3, sleep=lambda _: None))
    assert vpp.ping().vpe_pid == pid + 1
    assert [n.ns_id for n in vpp.app_namespaces()] == ["default"]


def test_reconnect_backs_off_while_vpp_is_down(fake: FakeVpp, vpp: Vpp) -> None:
    fake.crash("test: VPP is down")
    delays: list[float] = []

    def sleep(delay: float) -> None:
        delays.append(delay)
        if len(delays) == 3:
            fake.restart()  # VPP comes back while we wait

    vpp.reconnect(Backoff(initial=0.5, factor=2, max_delay=1.5, attempts=10, sleep=sleep))
    assert delays == [0.5, 1.0, 1.5]
    assert vpp.connected


def test_reconnect_gives_up_with_the_connect_error(fake: FakeVpp, vpp: Vpp) -> None:
    fake.crash("test: VPP is down")
    with pytest.raises(VppConnectError, match="connection refused"):
        vpp.reconnect(Backoff(attempts=2, sleep=lambda _: None))


def test_connect_with_backoff_waits_for_vpp(
    tmp_path: Path, message_table: list[tuple[int, str]]
) -> None:
    fake = FakeVpp(tmp_path, message_table=message_table)
    calls: list[float] = []

    def sleep(delay: float) -> None:
        calls.append(delay)
        fake.start()

    try:
        with connect_with_backoff(fake.api_socket, backoff=Backoff(sleep=sleep)) as vpp:
            assert vpp.ping().vpe_pid > 0
    finally:
        fake.stop()
    assert calls == [0.1]


def test_deleting_a_half_made_namespace_crashes_vpp(fake: FakeVpp, vpp: Vpp) -> None:
    """What the client's validation prevents, reproduced by sending it raw."""
    fields = {"namespace_id": "half-0", "secret": 1}
    assert (
        vpp._conn.call("app_namespace_add_del_v4", is_add=True, sock_name="@bad", **fields).retval
        == -1
    )
    with pytest.raises(VppDisconnected):
        vpp._conn.call("app_namespace_add_del_v4", is_add=False, sock_name="", **fields)
    assert fake.crashed is not None and "SIGSEGV" in fake.crashed
    with pytest.raises(VppConnectError, match="refused"):
        Vpp.connect(fake.api_socket)


def test_retry_trap_keeps_the_bad_socket_name(vpp: Vpp, sock_dir: Path) -> None:
    assert (
        vpp._conn.call(
            "app_namespace_add_del_v4",
            is_add=True,
            namespace_id="retry",
            sock_name="@bad",
            secret=0,
        ).retval
        == -1
    )
    assert vpp.add_app_namespace("retry", 7, str(sock_dir / "good")) == 1
    (ns,) = [n for n in vpp.app_namespaces() if n.ns_id == "retry"]
    assert (ns.secret, ns.sock_name) == (7, "@bad")
    assert not (sock_dir / "good").exists()


def test_heap_exhaustion_kills_vpp(tmp_path: Path, message_table: list[tuple[int, str]]) -> None:
    """Defaults as measured: a 1 GiB heap dies at the 139th namespace (~7 MB each)."""
    with (
        FakeVpp(tmp_path, message_table=message_table) as fake,
        Vpp.connect(fake.api_socket) as vpp,
    ):
        for i in range(138):
            vpp.add_app_namespace(f"ns-{i}", i, f"abstract:ns-{i}")
        heap = vpp.memory()
        assert heap.available < 7 << 20
        with pytest.raises(VppDisconnected):
            vpp.add_app_namespace("ns-138", 1, "abstract:ns-138")
        assert fake.crashed is not None and "heap" in fake.crashed


def test_heap_is_configurable(tmp_path: Path, message_table: list[tuple[int, str]]) -> None:
    heap = HeapModel(size=64 << 20, base_used=60 << 20, per_namespace=1 << 20)
    with (
        FakeVpp(tmp_path, message_table=message_table, heap=heap) as fake,
        Vpp.connect(fake.api_socket) as vpp,
    ):
        before = vpp.memory()
        vpp.add_app_namespace("one", 1, "abstract:one")
        after = vpp.memory()
        assert (before.size, before.used, after.used - before.used) == (64 << 20, 60 << 20, 1 << 20)


def test_no_reply_in_time_is_a_timeout(fake: FakeVpp) -> None:
    """A hung VPP: the call gives up after the client's timeout with VppTimeout, which is
    a VppDisconnected (the connection is abandoned, a late reply must not be misread)."""
    with Vpp.connect(fake.api_socket, timeout=0.2) as vpp:
        fake.freeze()
        with pytest.raises(VppTimeout, match="no reply from VPP to control_ping"):
            vpp.ping()
        assert not vpp.connected
        with pytest.raises(VppDisconnected):
            vpp.version()


def test_no_handshake_reply(fake: FakeVpp) -> None:
    fake.freeze()
    with pytest.raises(VppConnectError, match="no handshake reply"):
        Vpp.connect(fake.api_socket, timeout=0.2)
