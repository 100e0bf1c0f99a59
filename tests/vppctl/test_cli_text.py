"""CLI text parsers on VPP 26.06's real captures (ANSI colour codes, NUL bytes): every
`show app ns` capture, `show app`, `api-clients`, `show session verbose`, listeners and
clients with session attribution; the main-heap text (format from VPP's source, no
capture); sizes; malformed input raising CliTextError."""

from __future__ import annotations

import json
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
            "hazard/show_app_ns_after_add_0.txt",
            [(0, "default", 0, "DELETED (4294967295)"), (1, "half-0", 0, "local0")],
        ),
        ("hazard/show_app_ns_after_del_2.txt", [(0, "default", 0, "DELETED (4294967295)")]),
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
    assert cli_text.parse_apps(text) == [
        cli_text.AppRow(1, "python3-ldp-31069", "tenant-a"),
        cli_text.AppRow(2, "python3-ldp-31072", "tenant-a"),
        cli_text.AppRow(3, "vcl_test_server", "tenant-b"),
    ]
    assert cli_text.parse_apps(read(vpp_fixtures, "1-empty/show_app.txt")) == []
    verbose = read(vpp_fixtures, "3-vcl-apps/show_app_verbose.txt")
    assert cli_text.parse_apps(verbose) == cli_text.parse_apps(text)


def test_api_clients_lists_workers(vpp_fixtures: Path) -> None:
    socket, workers = cli_text.parse_api_clients(
        read(vpp_fixtures, "3-vcl-apps/show_app_ns_id_tenant-b_api-clients.txt")
    )
    assert socket == "abstract:vpp-ns-tenant-b"
    assert workers == [cli_text.ApiClient(3, 0, 30), cli_text.ApiClient(3, 1, 33)]
    _, none = cli_text.parse_api_clients(
        read(vpp_fixtures, "4-apps-exited/show_app_ns_id_tenant-a_api-clients.txt")
    )
    assert none == []


def test_app_workers_from_show_app_mq(vpp_fixtures: Path) -> None:
    workers = cli_text.parse_app_workers(read(vpp_fixtures, "3-vcl-apps/show_app_mq.txt"))
    by_app: dict[int, list[int]] = {}
    for w in workers:
        by_app.setdefault(w.app_index, []).append(w.wrk_index)
    assert by_app == {0: [0], 1: [1, 2, 3], 2: [4, 7, 8], 3: [5, 6]}
    assert [
        w.app_index
        for w in cli_text.parse_app_workers(read(vpp_fixtures, "1-empty/show_app_mq.txt"))
    ] == [0]


def test_sessions_and_their_owners(vpp_fixtures: Path) -> None:
    sessions = cli_text.parse_sessions(read(vpp_fixtures, "3-vcl-apps/show_session_verbose.txt"))
    assert len(sessions) == 12
    assert (sessions[0].transport, sessions[0].local, sessions[0].state) == (
        "CT:T",
        "0.0.0.0:5001",
        "LISTEN",
    )
    owners = cli_text.parse_session_owners(read(vpp_fixtures, "3-vcl-apps/show_app_listeners.txt"))
    owners += cli_text.parse_session_owners(read(vpp_fixtures, "3-vcl-apps/show_app_client.txt"))
    app_ns = {
        "python3-ldp-31069": "tenant-a",
        "python3-ldp-31072": "tenant-a",
        "vcl_test_server": "tenant-b",
    }
    found = {
        s.index: (s.app, s.ns_id) for s in cli_text.attribute_sessions(sessions, owners, app_ns)
    }
    assert found[9] == ("python3-ldp-31069", "tenant-a")  # accepted: matched to its listener
    assert found[10] == ("python3-ldp-31072", "tenant-a")  # connected: named by `show app client`
    assert found[7] == ("vcl_test_server", "tenant-b")


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
