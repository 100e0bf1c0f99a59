"""What real runtimes do that the plain socket API does not, on a moved socket:
- libuv (Node.js) closes with syscall(SYS_close, fd): the VCL session must close too (the
  peer sees EOF), not stay open for good;
- grpcio and others set options VCL 26.06 lacks (SO_RCVLOWAT, TCP_USER_TIMEOUT): the app
  gets what the kernel would say (set works, get reads it back), never EOPNOTSUPP (the
  fake LDP answers EOPNOTSUPP for them, as VCL does)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from typing import Any

CLIENT = """
import ctypes, socket, sys
port = int(sys.argv[1])
c = socket.create_connection(("127.0.0.2", port), timeout=10)
c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 7)
c.setsockopt(socket.IPPROTO_TCP, 18, 30000)  # TCP_USER_TIMEOUT
print(c.getsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT),
      c.getsockopt(socket.IPPROTO_TCP, 18), flush=True)
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
print(libc.syscall(3, ctypes.c_long(c.detach())), flush=True)  # SYS_close, as libuv does
sys.stdin.readline()  # the peer has answered
"""


def test_syscall_close_and_options_vcl_lacks(build: Any) -> None:
    server = socket.socket()
    server.bind(("127.0.0.2", 0))
    server.listen(1)
    server.settimeout(20)
    got: dict[str, bytes] = {}

    def peer() -> None:
        conn, _ = server.accept()
        conn.settimeout(10)
        got["eof"] = conn.recv(1)  # b"" when the client's session closed
        conn.close()

    thread = threading.Thread(target=peer)
    thread.start()
    env = build.env({**build.rules, "VCL_DUALSTACK_DEBUG": "1"})
    proc = subprocess.Popen([sys.executable, "-c", CLIENT, str(server.getsockname()[1])],
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdin is not None
        options = proc.stdout.readline().split()
        closed = proc.stdout.readline().strip()
        thread.join(timeout=15)
        proc.stdin.write("\n")
        proc.stdin.flush()
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        server.close()
    assert proc.returncode == 0, err
    assert options == ["7", "30000"], err
    assert closed == "0"
    assert got.get("eof") == b"", "the peer never saw the session close"
    if build.vcl_side != "libc":
        assert any("-> vcl" in line for line in build.decisions(err)), err
