"""FakeVpp's CLI texts are byte-identical to VPP 26.06's captures for the same state
(show app ns, show app, api-clients, show session verbose, show app client, show
version, fixed error texts, unknown commands), so the parsers meet the same text on both;
and its main-heap text round-trips through the parser."""

from __future__ import annotations

import re
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
    """The recorded 3-vcl-apps state, rebuilt through the fake's driving methods from
    what the recording shows (app names, worker fds, session indices), renders the same
    bytes."""
    captured = vpp_fixtures / "cli/3-vcl-apps"
    fixture_state(fake)
    server_name, client_name, _ = (r.name for r in cli_text.parse_apps(
        (captured / "show_app.txt").read_text()))  # fmt: skip
    server = fake.attach_app("tenant-a", server_name, workers=3)
    client = fake.attach_app("tenant-a", client_name, workers=3)
    test_server = fake.attach_app("tenant-b", "vcl_test_server", workers=2)
    for ns_id, apps in (("tenant-a", (server, client)), ("tenant-b", (test_server,))):
        text = (captured / f"show_app_ns_id_{ns_id}_api-clients.txt").read_text()
        _, rows = cli_text.parse_api_clients(text)
        fds = {(r.app_index, r.wrk_index): r.fd for r in rows}
        for app in apps:
            for n, worker in enumerate(fake.model.apps[app].workers):
                worker.fd = fds[(app, n)]
        fake.model.namespaces[{"tenant-a": 1, "tenant-b": 2}[ns_id]].fd = int(
            text.splitlines()[2].split()[-1]
        )
    assert cli(fake, "show app") == (captured / "show_app.txt").read_text()
    assert cli(fake, "show app verbose") == (captured / "show_app_verbose.txt").read_text()
    for ns_id in ("tenant-a", "tenant-b"):
        name = f"show_app_ns_id_{ns_id}_api-clients.txt"
        assert cli(fake, f"show app ns id {ns_id} api-clients") == (captured / name).read_text()
    workers = cli_text.parse_app_workers(cli(fake, "show app mq"))
    captured_workers = cli_text.parse_app_workers((captured / "show_app_mq.txt").read_text())
    assert len(workers) == len(captured_workers)
    listeners = {
        o.index: o.app
        for o in cli_text.parse_session_owners((captured / "show_app_listeners.txt").read_text())
    }
    apps = {server_name: server, client_name: client, "vcl_test_server": test_server}
    # VPP lists an app's connects worker by worker: the recorded order gives the workers.
    connects = cli_text.parse_session_owners((captured / "show_app_client.txt").read_text())
    worker_of = {o.index: n + 1 for n, o in enumerate(connects)}
    for s in cli_text.parse_sessions((captured / "show_session_verbose.txt").read_text()):
        fake.model.next_session = s.index
        if s.state == "LISTEN":
            fake.add_session(apps[listeners[s.index]], s.local, transport=s.transport)
        elif s.local.endswith(":0"):
            fake.add_session(client, s.local, s.remote, kind="connected",
                             transport=s.transport, wrk_index=worker_of[s.index])  # fmt: skip
        else:
            fake.add_session(server, s.local, kind="accepted", transport=s.transport)
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
    captured = (vpp_fixtures / "cli/1-empty/show_version_verbose.txt").read_text()
    fake.pid = int(captured.split()[-1])  # "Current PID:" of the VPP recorded
    assert cli(fake, "show version verbose") == captured


def test_show_clock_verbose_has_the_recorded_shape(fake: FakeVpp, vpp_fixtures: Path) -> None:
    """The fake's `show clock verbose` reads like the recorded one: the same lines, and
    its `init` is when this fake VPP started."""
    captured = (vpp_fixtures / "cli/1-empty/show_clock_verbose.txt").read_text()
    mine = cli(fake, "show clock verbose")

    def shape(text: str) -> list[str]:
        return [re.sub(r"[\d.]+", "N", line.split(",")[0]).strip() for line in text.splitlines()]

    assert shape(mine) == shape(captured)
    assert cli_text.parse_clock_init(mine) == pytest.approx(fake.model.started_at, abs=1e-6)


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
