"""The agent's side of live connection counts (reports.ConnPage): fds a pod passes are
untrusted. Only a sealed one-page file with the magic is kept (a page that could shrink
would fault the agent's reads), every other fd is closed at once, a page is dropped when
its process ends, and at most MAX_PROCESSES pages (fds) are held per pod."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conn_pages import conn_page as page
from injected_pods import injected_pod

from injector.agent.registration import desired
from injector.agent.reports import MAX_PROCESSES, PAGE_SIZE, ProcessReports

CONNS = b"vcl-report/1\tweb\t7\tnginx\tconns\tpage"


def live_pidfd() -> int:
    return os.pidfd_open(os.getpid())


def is_open(fd: int, inode: int | None = None) -> bool:
    """fd is open (and, given inode, still names that file: numbers are reused)."""
    try:
        info = os.fstat(fd)
    except OSError:
        return False
    return inode is None or info.st_ino == inode


@pytest.fixture
def pod(root: Path) -> Iterator[tuple[ProcessReports, str]]:
    reg = next(iter(desired([injected_pod("web")], str(root), "local")[0].values()))
    Path(reg.directory).mkdir(parents=True)
    reports = ProcessReports()
    reports.ensure(reg, (None, None))
    yield reports, reg.uid
    reports.close()


def test_a_valid_page_is_read_and_summed_over_processes(pod: tuple[ProcessReports, str]) -> None:
    reports, uid = pod
    assert reports.connections(uid) is None  # nobody connected yet
    reports.receive(uid, CONNS, [page(), live_pidfd()])
    reports.receive(uid, CONNS.replace(b"\t7\t", b"\t8\t"), [page((1, 0, 0), (1, 0, 0)),
                                                              live_pidfd()])  # fmt: skip
    assert reports.connections(uid) == {
        "open": {"vpp": 2, "kernel": 2, "loopback": 3},
        "total": {"vpp": 5, "kernel": 5, "loopback": 6},
        "processes": 2,
    }
    assert reports.of(uid) == []  # counts are not a state of the process


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(dict(seal=0), id="not-sealed-against-shrinking"),
        pytest.param(dict(size=64), id="smaller-than-a-page"),
        pytest.param(dict(size=2 * PAGE_SIZE), id="larger-than-a-page"),
        pytest.param(dict(magic=b"NOTCONNS"), id="no-magic"),
    ],
)
def test_a_page_that_is_not_one_is_refused_and_closed(
    pod: tuple[ProcessReports, str], bad: dict[str, Any]
) -> None:
    reports, uid = pod
    fds = [page(**bad), live_pidfd()]
    reports.receive(uid, CONNS, fds)
    assert reports.connections(uid) is None
    assert not any(is_open(fd) for fd in fds)


@pytest.mark.parametrize("kind", ["socket", "one-fd", "three-fds", "not-conns", "unknown-pod"])
def test_other_fds_are_closed_at_once(pod: tuple[ProcessReports, str], kind: str) -> None:
    reports, uid = pod
    a, b = socket.socketpair()
    fds = {
        "socket": [a.detach(), b.detach()],
        "one-fd": [page()],
        "three-fds": [page(), live_pidfd(), live_pidfd()],
        "not-conns": [page(), live_pidfd()],
        "unknown-pod": [page(), live_pidfd()],
    }[kind]
    datagram = CONNS.replace(b"conns", b"started") if kind == "not-conns" else CONNS
    reports.receive("someone-else" if kind == "unknown-pod" else uid, datagram, fds)
    assert reports.connections(uid) is None
    assert not any(is_open(fd) for fd in fds)
    for s in (a, b):
        s.close()


def test_a_page_goes_with_its_process_and_pages_are_bounded(
    pod: tuple[ProcessReports, str],
) -> None:
    reports, uid = pod
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child only exits
        os._exit(0)
    child_pidfd = os.pidfd_open(pid)
    os.waitpid(pid, 0)
    gone = [page(), child_pidfd]
    reports.receive(uid, CONNS, gone)
    assert reports.connections(uid) == {
        "open": {"vpp": 0, "kernel": 0, "loopback": 0},
        "total": {"vpp": 0, "kernel": 0, "loopback": 0},
        "processes": 0,
    }
    assert not any(is_open(fd) for fd in gone)
    held = []
    for n in range(MAX_PROCESSES + 5):
        fds = [page((1, 0, 0), (1, 0, 0)), live_pidfd()]
        held.append((fds[0], os.fstat(fds[0]).st_ino))  # pidfds share one anon inode
        reports.receive(uid, CONNS.replace(b"\t7\t", f"\t{100 + n}\t".encode()), fds)
    got = reports.connections(uid)
    assert got and got["processes"] == MAX_PROCESSES and got["open"]["vpp"] == MAX_PROCESSES
    assert not is_open(*held[0]) and is_open(*held[-1])  # the oldest were let go
    reports.keep_only(set())
    assert reports.connections(uid) is None
    assert not is_open(*held[-1])
