"""FakeVpp's CLI texts are byte-identical to VPP 26.06's captures for the same state
(show app ns, show app, api-clients, show session verbose, show app client, show
version, fixed error texts, unknown commands), so the parsers meet the same text on both;
and its main-heap text round-trips through the parser."""

from __future__ import annotations

from pathlib import Path

import pytest

from vppctl_py import cli_text
from vppctl_py.testing import FakeVpp, HeapModel
from vppctl_py.testing.render import memory_size, msize, run_cli
from vppctl_py.testing.state import VppCrash


def fixture_state(fake: FakeVpp) -> dict[str, int]:
    """The state of cli/3-vcl-apps, rebuilt through the fake's driving methods."""
    model = fake.model
    model.namespaces[0].sock_name = "/run/vpp/app_ns_sockets/default"
    loop0 = fake.add_interface("loop0", ["10.99.0.1/24"])
    assert model.add_namespace("tenant-a", "abstract:a", 1111, loop0, (0, 0)) == (0, 1)
    assert model.add_namespace(
        "tenant-b", "abstract:vpp-ns-tenant-b", 2222, 0xFFFFFFFF, (0, 0)
    ) == (0, 2)
    model.namespaces[1].sock_name = "/run/vpp/app_ns_sockets/tenant-a"
    return {"loop0": loop0}


def cli(fake: FakeVpp, cmd: str) -> str:
    retval, text = run_cli(fake.model, cmd, fake.pid)
    assert retval == 0
    return text


def test_show_app_ns_matches_capture(fake: FakeVpp, vpp_fixtures: Path) -> None:
    fixture_state(fake)
    assert (
        cli(fake, "show app ns")
        == (vpp_fixtures / "cli/2-two-namespaces/show_app_ns.txt").read_text()
    )


def test_apps_workers_sessions_match_capture(fake: FakeVpp, vpp_fixtures: Path) -> None:
    fixture_state(fake)
    fake.model.next_fd = 18
    server = fake.attach_app("tenant-a", "python3-ldp-31069", workers=3)
    client = fake.attach_app("tenant-a", "python3-ldp-31072", workers=3)
    fake.attach_app("tenant-b", "vcl_test_server", workers=2)
    for app, fds in ((server, [18, 21, 24]), (client, [27, 36, 40])):
        for worker, fd in zip(fake.model.apps[app].workers, fds, strict=True):
            worker.fd = fd
    captured = vpp_fixtures / "cli/3-vcl-apps"
    assert cli(fake, "show app") == (captured / "show_app.txt").read_text()
    assert cli(fake, "show app verbose") == (captured / "show_app_verbose.txt").read_text()
    assert (
        cli(fake, "show app ns id tenant-a api-clients")
        == (captured / "show_app_ns_id_tenant-a_api-clients.txt").read_text()
    )
    workers = cli_text.parse_app_workers(cli(fake, "show app mq"))
    captured_workers = cli_text.parse_app_workers((captured / "show_app_mq.txt").read_text())
    assert len(workers) == len(captured_workers)
    for local, transport in [
        ("0.0.0.0:5001", "CT:T"),
        ("10.99.0.1:5001", "T"),
        ("0.0.0.0:5002", "CT:T"),
        ("10.99.0.1:5002", "T"),
    ]:
        fake.add_session(server, local, transport=transport)
    for local, transport in [
        ("0.0.0.0:5201", "CT:T"),
        ("0.0.0.0:5201", "T"),
        ("0.0.0.0:5202", "CT:T"),
        ("0.0.0.0:5202", "T"),
    ]:
        fake.add_session(3, local, transport=transport)
    fake.model.sessions.pop(
        fake.add_session(server, "0.0.0.0:9")
    )  # index 8 is unused in the capture
    for port in (5001, 5002):
        fake.add_session(server, f"10.99.0.1:{port}", kind="accepted", transport="CT:T")
        fake.add_session(
            client, "0.0.0.0:0", f"10.99.0.1:{port}", kind="connected", transport="CT:T"
        )
    assert cli(fake, "show session verbose") == (captured / "show_session_verbose.txt").read_text()
    assert cli(fake, "show app client") == (captured / "show_app_client.txt").read_text()


def test_show_app_ns_id_detail_matches_capture(fake: FakeVpp, vpp_fixtures: Path) -> None:
    fixture_state(fake)
    expected = (vpp_fixtures / "cli/2-two-namespaces/show_app_ns_id_tenant-a.txt").read_text()
    assert cli(fake, "show app ns id tenant-a") == expected


@pytest.mark.parametrize(
    "name",
    [
        "show_app_mq",
        "show_version",
        "show_app",
        "show_app_ns_verbose",
        "show_session_verbose",
        "show_session_rules",
        "show_session_rules_tcp",
    ],
)
def test_empty_state_texts_match_capture(fake: FakeVpp, vpp_fixtures: Path, name: str) -> None:
    assert (
        cli(fake, name.replace("_", " ")) == (vpp_fixtures / f"cli/1-empty/{name}.txt").read_text()
    )


def test_show_version_verbose_matches_capture(fake: FakeVpp, vpp_fixtures: Path) -> None:
    assert (
        cli(fake, "show version verbose")
        == (vpp_fixtures / "cli/1-empty/show_version_verbose.txt").read_text()
    )


def test_api_clients_of_a_missing_namespace_crashes_vpp(fake: FakeVpp) -> None:
    """From VPP 26.06's source (not captured): the reason the client never asks."""
    with pytest.raises(VppCrash, match="app_namespace_show_api"):
        run_cli(fake.model, "show app ns id gone api-clients", fake.pid)
    assert run_cli(fake.model, "show app ns id gone", fake.pid) == (0, "ns gone not found\n")


@pytest.mark.parametrize(
    ("cmd", "text"),
    [
        ("show no-such-thing", "show: unknown input `no-such-thing'\n"),
        ("frobnicate now", "unknown input `frobnicate now'\n"),
    ],
)
def test_unknown_commands(fake: FakeVpp, cmd: str, text: str) -> None:
    assert run_cli(fake.model, cmd, fake.pid) == (-1, text)


@pytest.mark.parametrize("used_mib", [55, 69, 1000, 1024])
def test_main_heap_round_trip(tmp_path: Path, used_mib: int) -> None:
    with FakeVpp(tmp_path, heap=HeapModel(base_used=used_mib << 20)) as fake:
        heap = cli_text.parse_main_heap(cli(fake, "show memory main-heap"))
    assert (heap.size, heap.used) == (1 << 30, used_mib << 20)


@pytest.mark.parametrize(
    ("size", "memory", "m"),
    [
        (512, "512", "512"),
        (4096, "4k", "4.00K"),
        (3 << 29, "1.50g", "1.50G"),
        (1 << 30, "1g", "1.00G"),
        (1536, "1.50k", "1.50K"),
    ],
)
def test_size_formats(size: int, memory: str, m: str) -> None:
    assert (memory_size(size), msize(size)) == (memory, m)
