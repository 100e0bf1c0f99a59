"""Clients and measurements the app tests share: curl, wrk, and a few Python probes."""

from __future__ import annotations

import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from e2e.apps.lab import Pod

PY = sys.executable

# Connects, sends a request, reads the whole answer, and closes first (before the server).
CLOSE_FIRST = """
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
c.sendall(b"GET " + sys.argv[3].encode() + b" HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
data = b""
while b"\\r\\n\\r\\n" not in data:
    data += c.recv(65536)
head, _, body = data.partition(b"\\r\\n\\r\\n")
length = int(re.search(rb"content-length: *(\\d+)", head, re.I).group(1))
while len(body) < length:
    body += c.recv(65536)
c.close()
print(head.split(b"\\r\\n")[0].decode(), len(body))
""".replace("import socket, sys", "import re, socket, sys")

# Reads each connection until the client's half-close (EOF), then answers with what it
# read, reversed, and closes: a server only a working half-close lets answer.
#   ECHO_UNTIL_EOF PORT
ECHO_UNTIL_EOF = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen()
while True:
    c, _ = s.accept()
    data = b""
    while chunk := c.recv(65536):
        data += chunk
    c.sendall(data[::-1]); c.close()
"""


def wait_listening(pod: Pod, port: int, timeout: float = 20) -> None:
    """Waits until the pod's kernel side listens on the port (both-stacks listeners)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = pod.run(["ss", "-Htln", f"sport = :{port}"], vcl=False, timeout=10).stdout
        if out.strip():
            return
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on port {port} in {pod.name} after {timeout}s")


def curl(pod: Pod, url: str, *, vcl: bool, extra: list[str] | None = None) -> tuple[int, str]:
    """(exit code, body or error) of one curl process."""
    proc = pod.run(["curl", "-sS", "--max-time", "10", *(extra or []), url], vcl=vcl, timeout=30)
    return proc.returncode, proc.stdout if proc.returncode == 0 else proc.stderr.strip()


def curl_many(pod: Pod, url: str, n: int, *, vcl: bool, parallel: int = 1) -> list[str]:
    """The failures among n curl processes (parallel at a time): empty when all worked."""
    with ThreadPoolExecutor(parallel) as pool:
        results = list(pool.map(lambda _: curl(pod, url, vcl=vcl), range(n)))
    return [f"curl exit {rc}: {out}" for rc, out in results if rc != 0]


@dataclass(frozen=True)
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: int
    output: str
    requests: int = 0

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 1.0


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * _UNITS[unit]


def wrk(
    pod: Pod, url: str, *, vcl: bool, threads: int = 2, connections: int = 64, seconds: int = 3
) -> WrkResult:
    proc = pod.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        vcl=vcl, timeout=seconds + 60,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    lat = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)$", out, re.M))
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    errors += sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    if proc.returncode != 0 or not rps or len(lat) != 3:
        return WrkResult(0.0, 0.0, 0.0, 0.0, errors or 1, f"exit {proc.returncode}: {out[-800:]}")
    done = re.search(r"(\d+) requests in", out)
    return WrkResult(
        float(rps.group(1)), _ms(lat["50"]), _ms(lat["90"]), _ms(lat["99"]), errors, out,
        int(done.group(1)) if done else 0,
    )  # fmt: skip
