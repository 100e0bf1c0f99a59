"""An IPv6 socket connecting to an IPv4 peer as ::ffff:a.b.c.d (grpcio's client, Java,
`curl http://[::ffff:10.0.0.1]/`): VCL 26.06 takes the mapped address for an IPv6 one and
fails at once with ENOTCONN (the fake LDP does the same), so the interposer connects the
VCL session as IPv4, and getpeername/getsockname answer in the socket's family, as the
kernel does."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest

CLIENT = """
import socket, sys
c = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
c.settimeout(10)
c.connect(("::ffff:127.0.0.2", int(sys.argv[1])))
c.sendall(b"mapped")
print(c.recv(16).decode(), c.getpeername()[0], c.family.name)
"""


def test_v4_mapped_connect_goes_to_vcl_as_ipv4(build: Any, python: str) -> None:
    if build.vcl_side == "libc":
        pytest.skip("the libc VCL side is a kernel IPv6 socket, which wants the mapped form")
    server = socket.create_server(("127.0.0.2", 0))
    port = server.getsockname()[1]

    def echo() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(conn.recv(16))

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    try:
        proc = build.run(
            [python, "-c", CLIENT, str(port)], {**build.rules, "VCL_DUALSTACK_DEBUG": "1"}
        )
    finally:
        server.close()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["mapped", "::ffff:127.0.0.2", "AF_INET6"]
    assert any("-> vcl" in line for line in build.decisions(proc.stderr)), proc.stderr
