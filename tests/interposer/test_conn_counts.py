"""Live connection counts per stack (patches/src/ds_conns.c), read by the agent's own code
(ProcessReports) from the page the interposer sends: what vcl-status shows as a pod's
connections on VPP, on the kernel and on loopback.

A program opens connections on each stack (VCL: 127.0.0.2 in test mode; loopback:
127.0.0.1 kept on the kernel; kernel: this machine's own non-loopback address, kept on the
kernel by a CIDR rule), both ends counted (connect and accept); the counts follow its
closes while it runs, and the agent forgets the process once it exits (its sockets close
then without close() calls)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from injected_pods import injected_pod
from waiting import eventually

from injector.agent.registration import desired
from injector.agent.reports import ProcessReports

PROGRAM = r"""
import socket, sys
host = sys.argv[1]
pairs = {}
def pair(name, addr, family=socket.AF_INET):
    ls = socket.socket(family)
    ls.bind((addr, 0))
    ls.listen()
    c = socket.create_connection(ls.getsockname()[:2])
    s, _ = ls.accept()
    pairs[name] = (ls, c, s)
pair("vpp", "127.0.0.2")
pair("lo", "127.0.0.1")
if host:
    pair("kernel", host)
dup = pairs["vpp"][1].dup()  # a dup'ed fd is the same connection
print("open", flush=True)
sys.stdin.readline()
pairs["vpp"][1].close()  # one fd of two: still open
print("one fd", flush=True)
sys.stdin.readline()
dup.close()
pairs["lo"][2].close()
print("closed", flush=True)
sys.stdin.readline()
"""


def local_address() -> str:
    """This machine's own non-loopback IPv4 address ("" if it has none): a UDP connect
    sends nothing, it only picks the source address."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.254", 9))
        except OSError:
            return ""
        host = str(s.getsockname()[0])
    return "" if host.startswith("127.") else host


@pytest.fixture
def agent() -> Iterator[tuple[ProcessReports, Any]]:
    root = Path(tempfile.mkdtemp(prefix="vcl", dir="/tmp"))  # short: a unix socket path
    reg = next(iter(desired([injected_pod("web")], str(root), "local")[0].values()))
    Path(reg.directory).mkdir(parents=True)
    reports = ProcessReports()
    stop = threading.Event()
    thread = threading.Thread(target=reports.run, args=(stop,), daemon=True)
    thread.start()
    reports.ensure(reg, (None, None))
    try:
        yield reports, reg
    finally:
        stop.set()
        thread.join(timeout=5)
        reports.close()
        shutil.rmtree(root, ignore_errors=True)


def step(proc: subprocess.Popen[str], expect: str) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line == expect, proc.stderr.read() if proc.stderr else line


def test_each_stacks_connections_are_counted_live(
    build: Any, python: str, agent: tuple[ProcessReports, Any]
) -> None:
    reports, reg = agent
    host = local_address()
    env = {**build.rules, "VCL_REPORT_SOCKET": str(Path(reg.directory) / "report.sock"),
           "LDP_APP_NAME": "web"}  # fmt: skip
    if host:
        env["VCL_KERNEL_CIDRS"] += f",{host}/32"
    proc = subprocess.Popen(
        [python, "-c", PROGRAM, host],
        env=build.env(env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    kernel = 2 if host else 0
    try:
        step(proc, "open")

        def counted(open_: dict[str, int]) -> Any:
            got = reports.connections(reg.uid)
            return got if got and got["open"] == open_ else None

        got = eventually("both ends of each pair counted", lambda: counted(
            {"vpp": 2, "kernel": kernel, "loopback": 2}), timeout=10)  # fmt: skip
        assert got["total"] == {"vpp": 2, "kernel": kernel, "loopback": 2}
        assert got["processes"] == 1
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
        step(proc, "one fd")
        assert counted({"vpp": 2, "kernel": kernel, "loopback": 2})
        proc.stdin.write("\n")
        proc.stdin.flush()
        step(proc, "closed")
        got = counted({"vpp": 1, "kernel": kernel, "loopback": 1})
        assert got, reports.connections(reg.uid)
        assert got["total"] == {"vpp": 2, "kernel": kernel, "loopback": 2}
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""
        # Gone with its process: its sockets closed without close() calls.
        assert reports.connections(reg.uid) == {
            "open": {"vpp": 0, "kernel": 0, "loopback": 0},
            "total": {"vpp": 0, "kernel": 0, "loopback": 0},
            "processes": 0,
        }
    finally:
        proc.kill()
        proc.wait()
    if not host:
        pytest.skip("no non-loopback address on this machine: the kernel class was not run")


def test_nothing_is_counted_without_a_report_socket(build: Any, python: str) -> None:
    """No page: a process without VCL_REPORT_SOCKET only does its own work."""
    probe = (
        "import socket\n"
        "ls = socket.socket(); ls.bind(('127.0.0.2', 0)); ls.listen()\n"
        "c = socket.create_connection(ls.getsockname()); s, _ = ls.accept()\n"
        "print(any('vcl-conns' in line for line in open('/proc/self/maps')))\n"
    )
    proc = build.run([python, "-c", probe], build.rules)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
