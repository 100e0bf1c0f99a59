"""CLI text parsers on VPP 26.06's real captures (ANSI colour codes, NUL bytes): every
`show app ns` capture, `show app`, `api-clients`, `show session verbose`, listeners and
clients with session attribution; the main-heap text (format from VPP's source, no
capture); sizes; malformed input raising CliTextError."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from vppctl_py import cli_text
from vppctl_py.errors import CliTextError


def read(vpp_fixtures: Path, name: str) -> str:
    return (vpp_fixtures / "cli" / name).read_text()


@pytest.mark.parametrize(
    ("capture", "expected"),
    [
        ("1-empty/show_app_ns.txt", [(0, "default", 0, "DELETED (4294967295)")]),
        (
            "2-two-namespaces/show_app_ns.txt",
            [
                (0, "default", 0, "DELETED (4294967295)"),
                (1, "tenant-a", 1111, "loop0"),
                (2, "tenant-b", 2222, "DELETED (4294967295)"),
            ],
        ),
        (
            "api-cases/show_app_ns_after_duplicate_add.txt",
            [
                (0, "default", 0, "DELETED (4294967295)"),
                (1, "tenant-a", 9999, "loop0"),
                (2, "tenant-b", 2222, "DELETED (4294967295)"),
            ],
        ),
        (
            "hazard/show_app_ns_after_bad_add.txt",
            [(0, "default", 0, "DELETED (4294967295)"), (1, "half-bad", 0, "local0")],
        ),
        (
            "hazard/show_app_ns_after_missing_dir_add.txt",
            [(0, "default", 0, "DELETED (4294967295)"), (1, "half-dir", 0, "local0")],
        ),
        (
            "hazard/show_app_ns_after_missing_dir_del.txt",
            [(0, "default", 0, "DELETED (4294967295)")],
        ),
    ],
)
def test_show_app_ns(vpp_fixtures: Path, capture: str, expected: list[tuple[object, ...]]) -> None:
    rows = cli_text.parse_app_namespaces(read(vpp_fixtures, capture))
    assert [(r.index, r.ns_id, r.secret, r.interface) for r in rows] == expected


def test_every_show_app_ns_capture_parses(vpp_fixtures: Path) -> None:
    index = json.loads((vpp_fixtures / "cli" / "index.json").read_text())
    files = [e["file"] for e in index if e["cmd"] == "show app ns"]
    assert len(files) >= 6
    for file in files:
        rows = cli_text.parse_app_namespaces((vpp_fixtures / file).read_text())
        assert rows[0].ns_id == "default"
        assert all("\x1b" not in r.sock_name and "\x1b" not in r.ns_id for r in rows)


def test_long_ids_and_socket_names(vpp_fixtures: Path) -> None:
    rows = cli_text.parse_app_namespaces(
        read(vpp_fixtures, "api-cases/show_app_ns_with_default_sockname_and_long_id.txt")
    )
    assert rows[-1].ns_id == "x" * 63
    assert rows[-1].sock_name == "/run/vpp/app_ns_sockets/" + "x" * 63
    assert rows[2].sock_name == "abstract:vpp-ns-tenant-b"


def test_show_app_ns_without_colour_codes_uses_column_widths(vpp_fixtures: Path) -> None:
    text = cli_text.clean(read(vpp_fixtures, "2-two-namespaces/show_app_ns.txt"))
    rows = cli_text.parse_app_namespaces(text)
    assert [(r.ns_id, r.interface, r.sock_name) for r in rows][2] == (
        "tenant-b",
        "DELETED (4294967295)",
        "abstract:vpp-ns-tenant-b",
    )


def test_show_app_with_nul_bytes(vpp_fixtures: Path) -> None:
    text = read(vpp_fixtures, "3-vcl-apps/show_app.txt")
    assert "\0" in text
    rows = cli_text.parse_apps(text)
    assert [(r.index, r.ns_id) for r in rows] == [(1, "tenant-a"), (2, "tenant-a"), (3, "tenant-b")]
    # LDP names its app "<program>-ldp-<pid>"; vcl_test_server is a VCL app of its own.
    assert [re.sub(r"\d+$", "PID", r.name) for r in rows] == [
        "python3-ldp-PID", "python3-ldp-PID", "vcl_test_server"
    ]  # fmt: skip
    assert cli_text.parse_apps(read(vpp_fixtures, "1-empty/show_app.txt")) == []
    verbose = read(vpp_fixtures, "3-vcl-apps/show_app_verbose.txt")
    assert cli_text.parse_apps(verbose) == cli_text.parse_apps(text)


def test_api_clients_lists_workers(vpp_fixtures: Path) -> None:
    socket, workers = cli_text.parse_api_clients(
        read(vpp_fixtures, "3-vcl-apps/show_app_ns_id_tenant-b_api-clients.txt")
    )
    assert socket == "abstract:vpp-ns-tenant-b"
    # vcl_test_server -w 2: app 3's workers 0 and 1, each on its own socket connection.
    assert [(w.app_index, w.wrk_index) for w in workers] == [(3, 0), (3, 1)]
    assert len({w.fd for w in workers}) == 2 and all(w.fd > 2 for w in workers)
    _, none = cli_text.parse_api_clients(
        read(vpp_fixtures, "4-apps-exited/show_app_ns_id_tenant-a_api-clients.txt")
    )
    assert none == []


def test_app_workers_from_show_app_mq(vpp_fixtures: Path) -> None:
    workers = cli_text.parse_app_workers(read(vpp_fixtures, "3-vcl-apps/show_app_mq.txt"))
    by_app: dict[int, list[int]] = {}
    for w in workers:
        by_app.setdefault(w.app_index, []).append(w.wrk_index)
    # VPP's own app 0 (one worker), the two LDP apps with 3 workers each (main + two
    # threads, multi-thread-workers), vcl_test_server with 2; worker indices are VPP-wide.
    assert {app: len(w) for app, w in by_app.items()} == {0: 1, 1: 3, 2: 3, 3: 2}
    assert sorted(i for w in by_app.values() for i in w) == list(range(9))
    assert [
        w.app_index
        for w in cli_text.parse_app_workers(read(vpp_fixtures, "1-empty/show_app_mq.txt"))
    ] == [0]


def test_sessions_and_their_owners(vpp_fixtures: Path) -> None:
    sessions = cli_text.parse_sessions(read(vpp_fixtures, "3-vcl-apps/show_session_verbose.txt"))
    assert len(sessions) == 12
    # The first listener made (either thread of the server may be first).
    assert (sessions[0].transport, sessions[0].state) == ("CT:T", "LISTEN")
    assert sessions[0].local in ("0.0.0.0:5001", "0.0.0.0:5002")
    server, client, test_server = (
        r.name for r in cli_text.parse_apps(read(vpp_fixtures, "3-vcl-apps/show_app.txt"))
    )
    owners = cli_text.parse_session_owners(read(vpp_fixtures, "3-vcl-apps/show_app_listeners.txt"))
    owners += cli_text.parse_session_owners(read(vpp_fixtures, "3-vcl-apps/show_app_client.txt"))
    app_ns = {server: "tenant-a", client: "tenant-a", test_server: "tenant-b"}
    found = cli_text.attribute_sessions(sessions, owners, app_ns)
    by_kind: dict[tuple[str, str], set[str | None]] = {}
    for s in found:
        kind = "listen" if s.state == "LISTEN" else ("out" if s.local.endswith(":0") else "in")
        port = (s.remote if kind == "out" else s.local).rpartition(":")[2]
        by_kind.setdefault((kind, port), set()).add(s.app)
    # accepted sessions are matched to their listener; connected ones are named by
    # `show app client`; every session has its owner.
    assert by_kind[("in", "5001")] == by_kind[("in", "5002")] == {server}
    assert by_kind[("out", "5001")] == by_kind[("out", "5002")] == {client}
    assert by_kind[("listen", "5201")] == by_kind[("listen", "5202")] == {test_server}
    assert all(s.app and s.ns_id == app_ns[s.app] for s in found)


@pytest.mark.parametrize(
    "capture", ["1-empty/show_session_verbose.txt", "4-apps-exited/show_session_verbose.txt"]
)
def test_no_sessions(vpp_fixtures: Path, capture: str) -> None:
    assert cli_text.parse_sessions(read(vpp_fixtures, capture)) == []


MAIN_HEAP = (
    "  base 0x7f1c40000000, size 1g, locked, unmap-on-destroy, name 'main heap'\n"
    "    page stats: page-size 4K, total 262144, populated 15360, not-populated 246784\n"
    "      numa 0: 15360 pages, 60m bytes\n"
    "    total: 1023.99M, used: 60.36M, free: 963.63M, trimmable: 961.96M\n"
)


def test_main_heap() -> None:
    heap = cli_text.parse_main_heap(MAIN_HEAP)
    assert heap.size == 1 << 30
    assert heap.used == round(60.36 * (1 << 20))
    assert heap.free == round(963.63 * (1 << 20))
    assert heap.available == heap.free


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512", 512),
        ("4k", 4096),
        ("1.50g", 3 << 29),
        ("963.63M", round(963.63 * 2**20)),
        ("12.00K", 12288),
        ("2G", 2 << 30),
    ],
)
def test_sizes(text: str, size: int) -> None:
    assert cli_text.parse_size(text) == size


@pytest.mark.parametrize(
    ("parser", "text"),
    [
        (cli_text.parse_app_namespaces, "show app: session layer is not enabled\n"),
        (cli_text.parse_app_namespaces, "unknown input [verbose]\n"),
        (cli_text.parse_apps, "Index     Name\nnot a row at all here\n"),
        (cli_text.parse_api_clients, "application namespace x does not exist\n"),
        (cli_text.parse_sessions, "something else\n"),
        (cli_text.parse_main_heap, "base 0x0\n"),
        (cli_text.parse_size, "12 MB"),
    ],
)
def test_malformed_text_raises(parser: object, text: str) -> None:
    with pytest.raises(CliTextError):
        parser(text)  # type: ignore[operator]


def test_clock_init_is_when_vpp_started(vpp_fixtures: Path) -> None:
    """`show clock verbose` as recorded: `init` is the unix time VPP's clock started."""
    recorded = vpp_fixtures / "cli/1-empty/show_clock_verbose.txt"
    index = json.loads((vpp_fixtures / "cli" / "index.json").read_text())
    (entry,) = [e for e in index if e["file"] == "cli/1-empty/show_clock_verbose.txt"]
    started = cli_text.parse_clock_init(recorded.read_text())
    assert 1.7e9 < started < 2.2e9  # a unix time, to the microsecond
    with pytest.raises(CliTextError, match="no 'init' time"):
        cli_text.parse_clock_init("Time now 12.5, Wed, 02 Dec 2026 12:00:00 GMT\n")
    assert entry["retval"] == 0
