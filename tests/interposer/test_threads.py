"""Threads with `multi-thread-workers` (one VCL worker per thread, the injector's default).

VCL 26.06 lets only the thread that made a listening or connected session use it (the fake
LDP's FAKE_LDP_MT=1 does the same). A listener made on the main thread and accepted by
worker threads (Envoy's shape; haproxy's threads share listeners too) works because the
interposer gives every thread that uses it a VCL listener of its own; a connected session
handed to another thread cannot work, and the process says so once, naming the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

MT_CONF = "vcl {\n  use-mq-eventfd\n  multi-thread-workers\n}\n"


@pytest.fixture
def mt_env(build: Any, tmp_path: Path) -> dict[str, str]:
    if build.vcl_side == "libc":
        pytest.skip("needs the fake LDP, which reproduces VCL's per-thread sessions")
    conf = tmp_path / "vcl.conf"
    conf.write_text(MT_CONF)
    return {**build.rules, "VCL_CONFIG": str(conf), "FAKE_LDP_MT": "1", "VCL_DUALSTACK_DEBUG": "1"}


def test_listener_of_the_main_thread_is_accepted_by_worker_threads(
    build: Any, mt_env: dict[str, str]
) -> None:
    proc = build.run([str(build.c_test), "mt_listener"], mt_env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok mt_listener"
    lines = build.decisions(proc.stderr)
    assert sum("VCL listener for thread" in line for line in lines) == 2, lines


def test_ipv6_wildcard_listener_of_the_main_thread_takes_both_families_in_each_thread(
    build: Any, mt_env: dict[str, str]
) -> None:
    """Envoy's shape on [::] (IPV6_V6ONLY off): every worker thread gets an IPv6 and an
    IPv4 VCL listener, and IPv4 and IPv6 clients are served by both threads."""
    proc = build.run([str(build.c_test), "mt_listener_dual"], mt_env)
    assert proc.returncode == 0, proc.stderr
    lines = build.decisions(proc.stderr)
    assert sum("VCL listener for thread" in line for line in lines) == 2, lines
    ipv4 = [line for line in lines if "[::] listener takes IPv4 on VCL too" in line]
    assert len({line.rsplit("thread ", 1)[1] for line in ipv4}) == 3, lines  # main + 2 workers


def test_an_epoll_shared_by_threads_is_reported(build: Any, mt_env: dict[str, str]) -> None:
    """grpc's pollers share one epoll between threads: VCL answers the other thread
    EBADFD (the fake too); the process says so once, naming the fix (kernel-ports)."""
    proc = build.run([str(build.c_test), "mt_shared_epoll"], mt_env)
    assert proc.returncode == 0, proc.stderr
    assert "shared poller -1 errno 77" in proc.stdout
    said = [line for line in build.decisions(proc.stderr) if "waited on by another" in line]
    assert len(said) == 1 and "vcl.io/kernel-ports" in said[0], proc.stderr


def test_the_fake_refuses_what_vcl_refuses(build: Any, mt_env: dict[str, str]) -> None:
    """Without the interposer's per-thread listeners (VCL_CONFIG without
    multi-thread-workers, the fake still per-thread), the worker threads' accepts fail as
    they did on a real VPP ("migrate NOT supported")."""
    conf = Path(mt_env["VCL_CONFIG"])
    conf.write_text("vcl {\n  use-mq-eventfd\n}\n")
    proc = build.run([str(build.c_test), "mt_listener"], mt_env)
    assert proc.returncode != 0
    assert "errno 77" in proc.stderr  # EBADFD


def test_a_session_handed_to_another_thread_is_reported(build: Any, mt_env: dict[str, str]) -> None:
    proc = build.run([str(build.c_test), "mt_handoff"], mt_env)
    assert proc.returncode == 0, proc.stderr
    assert "handoff send -1 errno 77" in proc.stdout  # EBADFD, as VCL answers
    said = [line for line in build.decisions(proc.stderr) if "uses the session of thread" in line]
    assert len(said) == 1, proc.stderr
    assert "multi-queue off" in said[0] and 'vcl.io/workers: "false"' in said[0]


def test_a_session_used_after_fork_is_reported_as_fork(build: Any, mt_env: dict[str, str]) -> None:
    """socat's fork per connection: the child is another VCL worker and cannot use the
    parent's session (the fake answers EBADFD, as VCL does); the log names fork and the
    fix (kernel-ports), not threads."""
    proc = build.run([str(build.c_test), "fork"], mt_env)
    said = [line for line in build.decisions(proc.stderr) if "of its parent" in line]
    assert len(said) == 1, proc.stderr
    assert "vcl.io/kernel-ports" in said[0]


def test_a_listener_closed_by_another_thread_is_closed_once_by_its_own(
    build: Any, mt_env: dict[str, str]
) -> None:
    """The accepting thread's VCL listener, orphaned when another thread closes the
    listener, is closed at the thread's next call; VCL's close write()s its eventfd through
    the interposer, and that inner call must not close it again (VCL 26.06 spun for good
    on the session's lock: a server at 100% CPU; the fake aborts)."""
    proc = build.run([str(build.c_test), "mt_orphan"], {**mt_env, "FAKE_LDP_CLOSE_SIGNALS": "1"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok mt_orphan"
