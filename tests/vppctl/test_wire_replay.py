"""Replays tests/fixtures/vpp/wire-transcript.json (one real papi session with VPP
26.06: connect, show_version, cli_inband "show app", namespace add + delete, disconnect)
against FakeVpp: the client's request bytes are sent as captured and every reply must be
byte-identical to VPP's, except the header's `q` (8 stale pointer bytes VPP leaves there,
papi ignores them; the fake sends zeros).

Client index and contexts need no masking: the fake hands out VPP's first socket-client
index (0x80000001) and echoes the captured contexts. The namespace socket path
/run/vpp/app_ns_sockets/wire-ns is created under a temp fs_root."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from vppctl_py.testing import FakeVpp
from vppctl_py.testing.wire import HEADER


def read_frame(conn: socket.socket) -> bytes:
    header = recv_exactly(conn, HEADER.size)
    _, length, _ = HEADER.unpack(header)
    return header + recv_exactly(conn, length)


def recv_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        assert chunk, "the fake closed the connection"
        data += chunk
    return data


def test_replay_transcript(
    vpp_fixtures: Path, message_table: list[tuple[int, str]], tmp_path: Path
) -> None:
    frames = json.loads((vpp_fixtures / "wire-transcript.json").read_text())
    (tmp_path / "vpp").mkdir()
    compared = []
    with FakeVpp(tmp_path / "vpp", message_table=message_table, fs_root=tmp_path / "root") as fake:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(10)
            conn.connect(fake.api_socket)
            for frame in frames:
                captured = bytes.fromhex(frame["hex"])
                if frame["dir"] == "client_to_vpp":
                    conn.sendall(captured)
                    continue
                got = read_frame(conn)
                assert got[8:] == captured[8:], f"{frame['msg']} differs beyond the q bytes"
                compared.append(frame["msg"])
        assert (tmp_path / "root/run/vpp/app_ns_sockets/wire-ns").is_socket()
    assert compared == [
        "sockclnt_create_reply",
        "show_version_reply",
        "cli_inband_reply",
        "app_namespace_add_del_v4_reply",
        "app_namespace_add_del_v4_reply",
        "sockclnt_delete_reply",
    ]
