"""`vcl-injector serve --self-signed` as a separate process on a loopback port, for the
SIGTERM test and the load benchmark; run from this checkout (python -m), not whatever
console script is on PATH."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_webhook(port: int, *extra: str, **popen: Any) -> subprocess.Popen[Any]:
    """Start the server and return once /healthz answers (RuntimeError if it never does)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "injector.cli.injector", "serve", "--self-signed",
         "--host", "127.0.0.1", "--port", str(port), *extra],
        **popen,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"https://127.0.0.1:{port}/healthz", verify=False, timeout=1)
            return proc
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"vcl-injector did not start on port {port}") from None
            time.sleep(0.1)
