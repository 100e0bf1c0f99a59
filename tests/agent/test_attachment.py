"""Per selected container, from the interposer's reports, the container statuses and VPP's
apps: preload did not take (running past the grace with no report, but only when it
started after the agent's report socket was bound), LDP failed to load (with the reason),
a malformed rule, loaded, not loaded yet; and the report socket end to end: a real
datagram from a process under the interposer reaches the agent and vcl-status's data."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest
from injected_pods import injected_pod
from waiting import eventually

from injector.agent.attachment import REPORT_GRACE_SECONDS, attachment, is_containers_app
from injector.agent.registration import desired
from injector.agent.reports import MAX_PROCESSES, ProcessReport, ProcessReports, parse
from vppctl_py import App, AppWorker

NOW = 1_800_000_000.0


def pod_with(statuses: dict[str, str | None]) -> dict[str, Any]:
    return {"metadata": {"uid": "u-1"}, "status": {"containerStatuses": [
        {"name": n, "state": {"running": {"startedAt": s}} if s else {"waiting": {}}}
        for n, s in statuses.items()
    ]}}  # fmt: skip


def at(seconds_before_now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW - seconds_before_now))


def report(container: str, pid: int, state: str, detail: str = "") -> ProcessReport:
    return ProcessReport(container, pid, "nginx", state, detail, NOW)


def app(name: str) -> App:
    return App(1, name, "vcl-x", (AppWorker(1, 0),))


@pytest.mark.parametrize(
    ("reports", "apps", "started", "bound", "ldp", "problem"),
    [
        ([], [], 60, 120, "-", "preload did not take"),
        ([], [], REPORT_GRACE_SECONDS - 5, 120, "-", None),  # still within the grace
        ([], [], 60, 30, "-", None),  # started before the socket: not heard, not judged
        ([], [], None, 120, "-", None),  # not running
        ([report("web", 7, "started")], [], 60, 120, "not loaded yet", None),
        ([report("web", 7, "ldp-loaded")], [app("web-ldp-7")], 60, 120, "loaded", None),
        ([report("web", 7, "started")], [app("web-ldp-7")], 60, 120, "loaded", None),
        # VPP's app name as injected now: container and pod uid (replicas are all pid 1)
        ([report("web", 1, "started")], [app("web-u-1-ldp-1")], 60, 120, "loaded", None),
        (
            [report("web", 1, "started")],
            [app("web-u-2-ldp-1")],
            60,
            120,
            "not loaded yet",
            None,
        ),  # another pod's app of the same container name
        (
            [report("web", 7, "ldp-failed", "libunwind.so.8: cannot open shared object file")],
            [],
            60,
            120,
            "failed",
            "LDP failed to load: libunwind.so.8",
        ),
        (
            [report("web", 7, "disabled", "a dual-stack rule is malformed")],
            [],
            60,
            120,
            "failed",
            "a dual-stack rule is malformed",
        ),
        ([report("web", 7, "vpp-unreachable", "gone")], [], 60, 120, "vpp-unreachable", None),
        (  # a session used by another thread than its own: loaded, and said why it fails
            [report("web", 7, "thread-handoff", 'set vcl.io/workers: "false"')],
            [app("web-ldp-7")],
            60,
            120,
            "loaded",
            'nginx (pid 7): set vcl.io/workers: "false"',
        ),
        (  # shutdown(SHUT_WR) on a VPP session: loaded, and the port to keep on the kernel
            [report("web", 7, "half-close", 'port 7001: ... vcl.io/kernel-ports: "7001"')],
            [app("web-ldp-7")],
            60,
            120,
            "loaded",
            'nginx (pid 7): port 7001: ... vcl.io/kernel-ports: "7001"',
        ),
        (  # a handoff outranks a half-close of another process
            [
                report("web", 7, "thread-handoff", "threads"),
                report("web", 8, "half-close", "port 1"),
            ],
            [app("web-ldp-7")],
            60,
            120,
            "loaded",
            "nginx (pid 7): threads",
        ),
        (
            [report("sidecar", 9, "started")],
            [app("sidecar-ldp-9")],
            60,
            120,
            "-",
            "preload did not take",
        ),  # another container's reports are not this one's
    ],
)
def test_attachment_table(
    reports: list[ProcessReport], apps: list[App], started: float | None, bound: float,
    ldp: str, problem: str | None,
) -> None:  # fmt: skip
    pod = pod_with({"web": at(started) if started is not None else None})
    (one,) = attachment(pod, ["web"], reports, apps, listening_since=NOW - bound, now=NOW)
    assert one.ldp == ldp
    if problem is None:
        assert one.problem is None
    else:
        assert one.problem is not None and problem in one.problem
        assert one.problem.startswith("container web: ")


@pytest.mark.parametrize(
    "datagram",
    [
        b"",
        b"hello",
        b"vcl-report/1\tweb\t7\tnginx\tstarted",  # a field short
        b"vcl-report/2\tweb\t7\tnginx\tstarted\t",
        b"vcl-report/1\tweb\tseven\tnginx\tstarted\t",
        b"vcl-report/1\tweb\t7\tnginx\trm -rf\t",
        b"vcl-report/1\t" + b"x" * 64 + b"\t7\tnginx\tstarted\t",
        b"\xff\xfe" * 600,
    ],
)
def test_what_is_not_a_report_is_ignored(datagram: bytes) -> None:
    assert parse(datagram, NOW) is None


def test_reports_are_bounded_and_news_is_never_hidden_by_less(root: Path) -> None:
    reg = next(iter(desired([injected_pod("web")], str(root), "local")[0].values()))
    Path(reg.directory).mkdir(parents=True)
    reports = ProcessReports()
    try:
        reports.ensure(reg, (None, None))
        reports.receive(reg.uid, b"vcl-report/1\tweb\t7\tnginx\tldp-failed\twhy")
        reports.receive(reg.uid, b"vcl-report/1\tweb\t7\tnginx\tstarted\t")
        assert [r.state for r in reports.of(reg.uid)] == ["ldp-failed"]
        reports.receive(reg.uid, b"vcl-report/1\tweb\t8\tnginx\tthread-handoff\tthreads")
        reports.receive(reg.uid, b"vcl-report/1\tweb\t8\tnginx\thalf-close\tport 1")
        reports.receive(reg.uid, b"vcl-report/1\tweb\t9\tnginx\thalf-close\tport 1")
        reports.receive(reg.uid, b"vcl-report/1\tweb\t9\tnginx\tthread-handoff\tthreads")
        assert [r.state for r in reports.of(reg.uid)] == [
            "ldp-failed",
            "thread-handoff",  # a half-close does not hide it
            "thread-handoff",  # and is replaced by it
        ]
        for pid in range(100, 100 + 2 * MAX_PROCESSES):
            reports.receive(reg.uid, f"vcl-report/1\tweb\t{pid}\tsh\tstarted\t".encode())
        kept = reports.of(reg.uid)
        assert len(kept) == MAX_PROCESSES and kept[-1].pid == 100 + 2 * MAX_PROCESSES - 1
        reports.receive("someone-else", b"vcl-report/1\tweb\t7\tnginx\tstarted\t")
        assert reports.of("someone-else") == []
    finally:
        reports.close()


def test_a_datagram_reaches_the_agent(root: Path) -> None:
    """The socket the pod sees as /etc/vcl/report.sock, bound in its directory (0660),
    rebound when stale, removed with the pod."""
    import threading

    reg = next(iter(desired([injected_pod("web")], str(root), "local")[0].values()))
    Path(reg.directory).mkdir(parents=True)
    stale = Path(reg.directory) / "report.sock"
    leftover = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    leftover.bind(str(stale))  # what a previous agent left behind
    leftover.close()
    reports = ProcessReports()
    stop = threading.Event()
    thread = threading.Thread(target=reports.run, args=(stop,), daemon=True)
    thread.start()
    try:
        reports.ensure(reg, (None, None))
        assert stale.stat().st_mode & 0o777 == 0o660
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as app:
            app.sendto(b"vcl-report/1\tweb\t42\tnginx\tldp-loaded\t/opt/vcl/lib/x.so", str(stale))
        got = eventually("the report", lambda: reports.of(reg.uid))
        assert (got[0].container, got[0].pid, got[0].state) == ("web", 42, "ldp-loaded")
        reports.keep_only(set())
        assert not stale.exists() and reports.of(reg.uid) == []
    finally:
        stop.set()
        thread.join(timeout=5)
        reports.close()


UID = "6aa69a57-9646-4259-aca3-0fc33a03d2ed"


@pytest.mark.parametrize(
    ("app_name", "mine"),
    [
        (f"web-{UID}-ldp-1", True),
        ("web-ldp-7", True),  # injected before the pod's uid was in the name
        ("web-6aa69a57-9646-42", True),  # as `show app` prints it: 20 characters
        ("web-6cc3c50c-00a3-44", False),  # another pod's
        ("webapp-6aa69a57-9646", False),  # another container's
        ("web-6aa69a57", False),  # short: a whole name, not this one
    ],
)
def test_an_app_is_the_containers_by_its_name_as_vpp_prints_it(app_name: str, mine: bool) -> None:
    assert is_containers_app(app_name, "web", UID) is mine
