"""What the interposer in each pod reports: per container, per process, did the preload
take, did LDP load (or why not). One SOCK_DGRAM socket per registered pod, in the pod's
directory (`report.sock`, the pod sees it as /etc/vcl/report.sock); datagrams are one
tab-separated line, `vcl-report/1 <container> <pid> <comm> <state> <detail>`.

A container with no report at all after it started never ran our code: a static binary
or a non-glibc runtime, where LD_PRELOAD does not reach ("preload did not take"). One
whose processes report `ldp-failed` lacks a library LDP needs in its image. Both run on
the kernel while the pod looks fine; vcl-status shows them unhealthy instead.

Live connection counts: a process's first TCP connection sends `conns` with two fds
(SCM_RIGHTS): a sealed 4 KiB memfd in which the interposer keeps its open/total
connection counts per stack (VPP, kernel, loopback), and a pidfd of the process. The
agent reads the page when asked (pread: a sealed page cannot shrink under the read) and
drops both fds once the pidfd says the process ended, so the figures are current without
the app reporting on a timer (patches/src/ds_conns.c).

Datagrams come from the pod (untrusted): lines are length-capped, fields checked, fds
checked (a sealed regular file of exactly one page carrying the magic) and closed unless
kept, and the per-pod memory and fds are bounded (the newest processes are kept).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import selectors
import socket
import stat
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from injector.agent.registration import PodRegistration

REPORT_SOCKET_NAME = "report.sock"
MAGIC = "vcl-report/1"
STATES = frozenset(
    {
        "started",
        "ldp-loaded",
        "ldp-failed",
        "vpp-unreachable",
        "disabled",
        "thread-handoff",
        "half-close",
        "conns",
    }
)
# What a later report of the same process may not hide: a half-close (a suggestion) never
# replaces a failure that stops the app working.
_OUTRANKS_HALF_CLOSE = frozenset({"ldp-failed", "disabled", "thread-handoff"})
MAX_DATAGRAM = 1024
MAX_PROCESSES = 64  # per pod: the newest are kept
MAX_FDS = 2  # per datagram: a conns report's page and pidfd; more are refused by the kernel
CONN_CLASSES = ("vpp", "kernel", "loopback")  # the page's order (ds_conns.c)
PAGE_MAGIC = b"VCLCONN1"
PAGE_SIZE = 4096
_PAGE_BYTES = len(PAGE_MAGIC) + 8 * 2 * len(CONN_CLASSES)
_REQUIRED_SEALS = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_SEAL


@dataclass(frozen=True)
class ProcessReport:
    container: str
    pid: int
    comm: str
    # the latest: started < ldp-loaded | ldp-failed | vpp-unreachable | disabled, then
    # thread-handoff (a VCL session used by another thread than its own: it fails) or
    # half-close (shutdown(SHUT_WR) on a VPP session: the peer sees no EOF until close)
    state: str
    detail: str
    at: float  # when the agent received it (unix time)


@dataclass(frozen=True)
class ConnPage:
    """A process's live connection counts (its memfd) and its pidfd; the agent owns both."""

    page: int
    pidfd: int

    def alive(self) -> bool:
        poller = select.poll()
        poller.register(self.pidfd, select.POLLIN)
        return not poller.poll(0)  # a pidfd is readable once its process has ended

    def counts(self) -> tuple[dict[str, int], dict[str, int]] | None:
        """(open, total) per class, or None if the page no longer reads as one."""
        try:
            raw = os.pread(self.page, _PAGE_BYTES, 0)
        except OSError:
            return None
        if len(raw) != _PAGE_BYTES or not raw.startswith(PAGE_MAGIC):
            return None
        words = [int.from_bytes(raw[i : i + 8], "little") for i in range(8, _PAGE_BYTES, 8)]
        n = len(CONN_CLASSES)
        return dict(zip(CONN_CLASSES, words[:n], strict=True)), dict(
            zip(CONN_CLASSES, words[n:], strict=True)
        )

    def close(self) -> None:
        for fd in (self.page, self.pidfd):
            with contextlib.suppress(OSError):
                os.close(fd)


def conn_page(fds: list[int]) -> ConnPage | None:
    """The fds of a conns report, if they are what the interposer sends: a regular file
    of exactly one page, sealed against shrinking (reads can never fault), with the magic."""
    if len(fds) != 2:
        return None
    page, pidfd = fds
    try:
        info = os.fstat(page)
        seals = fcntl.fcntl(page, fcntl.F_GET_SEALS)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_size != PAGE_SIZE:
        return None
    if seals & _REQUIRED_SEALS != _REQUIRED_SEALS:
        return None
    found = ConnPage(page, pidfd)
    return found if found.counts() is not None else None


def parse(datagram: bytes, now: float) -> ProcessReport | None:
    """One report, or None for anything that is not one (never raises)."""
    fields = datagram[:MAX_DATAGRAM].decode("utf-8", "replace").split("\t")
    if len(fields) != 6 or fields[0] != MAGIC or fields[4] not in STATES:
        return None
    container, pid, comm, state, detail = fields[1:]
    if not pid.isdigit() or not container or len(container) > 63:
        return None
    return ProcessReport(container, int(pid), comm[:32], state, detail[:320], now)


class ProcessReports:
    """The report sockets of registered pods and what came through them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: dict[str, socket.socket] = {}  # uid -> bound socket
        self._paths: dict[str, Path] = {}
        self.bound_at: dict[str, float] = {}  # uid -> when its socket was (re)bound
        self._reports: dict[str, OrderedDict[tuple[str, int], ProcessReport]] = {}
        self._pages: dict[str, OrderedDict[tuple[str, int], ConnPage]] = {}
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._selector.register(self._wake_r, selectors.EVENT_READ)

    def ensure(self, reg: PodRegistration, owner: tuple[int | None, int | None]) -> None:
        """The pod's report socket, bound before its vcl.conf is written (the app may start
        right after); rebound after an agent restart, when the file is stale."""
        path = Path(reg.directory) / REPORT_SOCKET_NAME
        with self._lock:
            if reg.uid in self._sockets and self._paths[reg.uid] == path and _is_socket(path):
                return
            self._close(reg.uid)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.setblocking(False)
            try:
                sock.bind(str(path))
            except OSError:
                sock.close()
                raise
            # Sending needs write permission on the socket: the pod's user or group.
            if os.geteuid() == 0:
                os.chown(path, owner[0] if owner[0] is not None else -1, owner[1] or -1)
            os.chmod(path, 0o660)
            self._sockets[reg.uid] = sock
            self._paths[reg.uid] = path
            self.bound_at[reg.uid] = time.time()
            self._reports.setdefault(reg.uid, OrderedDict())
            self._selector.register(sock, selectors.EVENT_READ, reg.uid)
        self._wake_w.send(b"w")

    def keep_only(self, uids: set[str]) -> None:
        """Close the sockets (and forget the reports) of pods no longer registered."""
        with self._lock:
            for uid in [u for u in self._sockets if u not in uids]:
                self._close(uid)
            for uid in [u for u in self._reports if u not in uids]:
                del self._reports[uid]
            for uid in [u for u in self._pages if u not in uids]:
                for page in self._pages.pop(uid).values():
                    page.close()

    def _close(self, uid: str) -> None:
        sock = self._sockets.pop(uid, None)
        path = self._paths.pop(uid, None)
        self.bound_at.pop(uid, None)
        if sock is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(sock)
            sock.close()
        if path is not None and _is_socket(path):
            path.unlink(missing_ok=True)

    def of(self, uid: str) -> list[ProcessReport]:
        with self._lock:
            return list(self._reports.get(uid, {}).values())

    def connections(self, uid: str) -> dict[str, Any] | None:
        """The pod's live connections per stack, summed over its running processes that
        connected (None before any did): open and total (since each process started)."""
        with self._lock:
            pages = self._pages.get(uid)
            if not pages:
                return None
            opened = dict.fromkeys(CONN_CLASSES, 0)
            total = dict.fromkeys(CONN_CLASSES, 0)
            processes = 0
            for key, page in list(pages.items()):
                read = page.counts() if page.alive() else None
                if read is None:  # the process ended (or its page is no longer one)
                    page.close()
                    del pages[key]
                    continue
                processes += 1
                for cls in CONN_CLASSES:
                    opened[cls] += read[0][cls]
                    total[cls] += read[1][cls]
            return {"open": opened, "total": total, "processes": processes}

    def receive(self, uid: str, datagram: bytes, fds: list[int] | None = None) -> None:
        """One datagram of the pod's; fds passed along are kept only by a valid conns
        report and closed in every other case."""
        fds = list(fds or [])
        try:
            self._receive(uid, datagram, fds)
        finally:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _receive(self, uid: str, datagram: bytes, fds: list[int]) -> None:
        report = parse(datagram, time.time())
        if report is None:
            return
        with self._lock:
            known = self._reports.get(uid)
            if known is None:
                return
            key = (report.container, report.pid)
            if report.state == "conns":
                page = conn_page(fds)
                if page is not None:
                    fds.clear()  # kept
                    pages = self._pages.setdefault(uid, OrderedDict())
                    if (old := pages.pop(key, None)) is not None:
                        old.close()  # the pid was reused in the pod
                    pages[key] = page
                    while len(pages) > MAX_PROCESSES:
                        pages.popitem(last=False)[1].close()
                return  # counts, not a state: what vcl-status shows of the process stays
            # "started" never hides what came after it for the same process.
            if report.state == "started" and key in known:
                return
            if (
                report.state == "half-close"
                and key in known
                and known[key].state in _OUTRANKS_HALF_CLOSE
            ):
                return
            known[key] = report
            known.move_to_end(key)
            while len(known) > MAX_PROCESSES:
                known.popitem(last=False)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            for key, _ in self._selector.select(timeout=1.0):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._wake_r:
                    sock.recv(64)
                    continue
                for _ in range(256):  # drain, but let other pods' sockets have a turn
                    try:
                        datagram, fds, _, _ = socket.recv_fds(sock, MAX_DATAGRAM, MAX_FDS)
                    except (BlockingIOError, OSError):
                        break
                    self.receive(str(key.data), datagram, fds)

    def close(self) -> None:
        with self._lock:
            for uid in list(self._sockets):
                self._close(uid)
            for pages in self._pages.values():
                for page in pages.values():
                    page.close()
            self._pages.clear()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()


def _is_socket(path: Path) -> bool:
    try:
        return stat.S_ISSOCK(path.lstat().st_mode)
    except OSError:
        return False
