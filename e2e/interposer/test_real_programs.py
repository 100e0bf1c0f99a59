"""Real programs through the injected wiring and a real VPP (the start of the app suite):
Node.js's http server (libuv: epoll, and syscall(SYS_close) for every close) serves one
client process after another through VPP. Before the interposer reached libuv's raw
close and made a peer's close readable, only the first client got an answer."""

from __future__ import annotations

import shutil
import time

import pytest

NODE_SERVER = """
const http = require('http');
const server = http.createServer((req, res) => {
  res.writeHead(200, {'Content-Type': 'text/plain', 'Content-Length': 3});
  res.end('ok\\n');
});
server.listen(0, process.argv[1], () => console.log(server.address().port));
"""

CLIENT = """
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
c.sendall(b"GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
data = b""
while not data.endswith(b"ok\\n"):
    chunk = c.recv(4096)
    if not chunk:
        break
    data += chunk
print(data.split(b"\\r\\n")[0].decode())
"""


def test_node_http_serves_client_after_client(build, python: str) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("no node on this machine (Debian's nodejs)")
    server = build.start([node, "-e", NODE_SERVER, "--", build.moved], build.rules)
    try:
        assert server.stdout is not None
        port = server.stdout.readline().strip()
        assert port.isdigit(), server.stderr.read() if server.stderr else ""
        answers = []
        for _ in range(5):
            started = time.monotonic()
            proc = build.run([python, "-c", CLIENT, build.moved, port], build.rules)
            answers.append((proc.stdout.strip(), round(time.monotonic() - started, 1)))
        assert [a for a, _ in answers] == ["HTTP/1.1 200 OK"] * 5, answers
        assert all(seconds < 10 for _, seconds in answers), answers
    finally:
        server.kill()
        server.communicate()
