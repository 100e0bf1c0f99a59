"""A peer's close is readable on a moved socket, as on the kernel: VCL 26.06 reports it as
EPOLLRDHUP (or EPOLLHUP) without EPOLLIN (the fake LDP does the same), and nginx, which
reads (and so closes) only on EPOLLIN, kept such sessions forever on a real VPP, until
VPP handed the leftover segment to its next client. epoll, poll and select all see it."""

from __future__ import annotations

import select
import socket
import subprocess
import time
from typing import Any

SERVER = """
import select, socket, sys
s = socket.socket(); s.bind(("127.0.0.2", 0)); s.listen(1)
print(s.getsockname()[1], flush=True)
c, _ = s.accept()
sys.stdin.readline()  # the peer has closed
ep = select.epoll(); ep.register(c.fileno(), select.EPOLLIN | select.EPOLLRDHUP)
events = ep.poll(5)
p = select.poll(); p.register(c.fileno(), select.POLLIN | select.POLLRDHUP)
polled = p.poll(5000)
readable, _, _ = select.select([c], [], [], 5)
print(events[0][1] if events else 0, polled[0][1] if polled else 0, len(readable), repr(c.recv(8)))
"""


def test_peer_close_is_readable_everywhere(build: Any) -> None:
    env = build.env({**build.rules, "VCL_DUALSTACK_DEBUG": "1"})
    proc = subprocess.Popen(["python3", "-c", SERVER], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdin is not None
        port = int(proc.stdout.readline())
        socket.create_connection(("127.0.0.2", port), timeout=10).close()
        proc.stdin.write("closed\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    epoll_events, poll_events, selected, data = out.split()
    assert int(epoll_events) & select.EPOLLIN, (epoll_events, build.decisions(err))
    assert int(epoll_events) & select.EPOLLRDHUP
    assert int(poll_events) & select.POLLIN
    assert (selected, data) == ("1", "b''")
    if build.vcl_side != "libc":
        assert any("-> vcl" in line for line in build.decisions(err)), err


WAITER = """
import select, socket, sys
s = socket.socket(); s.bind(("127.0.0.2", 0)); s.listen(1)
print(s.getsockname()[1], flush=True)
c, _ = s.accept()
ep = select.epoll(); ep.register(c.fileno(), select.EPOLLIN)
print(len(ep.poll(-1)))  # an infinite wait: returns with the data, never with nothing
"""


def test_an_infinite_wait_never_returns_nothing(build: Any) -> None:
    """VCL may wake an infinite epoll_wait with nothing to report (the fake LDP does so
    once with FAKE_LDP_SPURIOUS_WAKEUP): the app must not see 0 events (nginx alerts)."""
    env = build.env({**build.rules, "FAKE_LDP_SPURIOUS_WAKEUP": "1"})
    proc = subprocess.Popen(["python3", "-c", WAITER], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        with socket.create_connection(("127.0.0.2", port), timeout=10) as peer:
            time.sleep(0.3)
            peer.sendall(b"x")
            out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert out.strip() == "1"
