"""The C test program under the interposer: every intercepted call, kernel and moved paths.

Covers (one scenario each, plain and ASan/UBSan builds): blocking connect + getpeername +
shutdown; options set before connect replayed on the moved socket; non-blocking connect
(fcntl and FIONBIO) completed through poll + SO_ERROR; epoll registered before connect
(events and data follow the move, kernel and moved fds in one epoll, MOD/DEL); select,
pselect and ppoll; dup/dup2/dup3/F_DUPFD; fork; 8 threads; UDP sendto/recvfrom/sendmsg/
recvmsg/sendmmsg/recvmmsg; IPv6 and v4-mapped; readv/writev/sendfile; close_range; and the
VCL_KERNEL_LISTEN=both listener accepting from both stacks. The program checks each
socket's path itself; the debug log is checked here too.
"""

from __future__ import annotations

import re
import subprocess

import pytest


def run_scenario(build, name: str, **env: str) -> list[str]:
    extra = {**build.rules, "VCL_DUALSTACK_DEBUG": "1", **env}
    proc = build.run([str(build.c_test), name], extra)
    assert proc.returncode == 0, f"{name} failed ({proc.returncode}):\n{proc.stderr}"
    assert proc.stdout.strip() == f"ok {name}"
    assert "runtime error" not in proc.stderr  # UBSan reports without halting on some checks
    return build.decisions(proc.stderr)


def test_scenario(build, scenario: str) -> None:
    log = run_scenario(build, scenario)
    assert any(line.endswith("-> vcl (no kernel rule)") for line in log), log
    if scenario not in ("sockopt", "dup", "fork", "vectors", "close_range"):
        assert any(
            "127.0.0.1" in line and "-> kernel (in VCL_KERNEL_CIDRS)" in line for line in log
        )


def test_each_moved_connect_is_logged_with_its_address(build) -> None:
    log = run_scenario(build, "tcp_blocking")
    assert any(
        re.fullmatch(r"fd \d+ connect 127\.0\.0\.2:\d+ -> vcl \(no kernel rule\)", x) for x in log
    )
    assert any(
        re.fullmatch(r"fd \d+ bind 127\.0\.0\.2:0 -> vcl \(no kernel rule\)", x) for x in log
    )
    assert any(re.fullmatch(r"fd \d+ accepted on fd \d+ from vcl", x) for x in log)


def test_listen_both_accepts_from_both_stacks(build) -> None:
    log = run_scenario(build, "listen_both", VCL_KERNEL_LISTEN="both")
    assert any(re.fullmatch(r"fd \d+ bind 0\.0\.0\.0:0 -> both \(.*both\)", x) for x in log)
    assert any(re.fullmatch(r"fd \d+ accepted on fd \d+ from kernel", x) for x in log)
    assert any(re.fullmatch(r"fd \d+ accepted on fd \d+ from vcl", x) for x in log)


def test_program_refuses_to_run_without_the_library(build) -> None:
    env = build.env(build.rules)
    env.pop("LD_PRELOAD")
    proc = subprocess.run([str(build.c_test), "tcp_blocking"], env=env, capture_output=True)
    # (the ASan build's program carries its own runtime, so it starts without a preload too)
    assert proc.returncode == 2


@pytest.mark.parametrize("kernel_listen", ["vcl", "both"])
def test_ipv6_wildcard_listener_takes_ipv4_clients(build, kernel_listen: str) -> None:
    """Node's listen(port), iperf3 -s and grpcio listen on [::] with IPV6_V6ONLY off; VCL's
    listener serves one family, so the interposer adds an IPv4 one behind the same fd
    (without it the IPv4 client is refused, or in `both` mode taken by the kernel)."""
    env = {"VCL_KERNEL_LISTEN": "both"} if kernel_listen == "both" else {}
    log = run_scenario(build, "listen_dual", **env)
    assert any(re.fullmatch(r"fd \d+: \[::\] listener takes IPv4 on VCL too .*", x) for x in log)
    assert sum(bool(re.fullmatch(r"fd \d+ accepted on fd \d+ from vcl", x)) for x in log) == 2


def test_a_thread_blocked_on_an_epoll_sees_a_moved_socket_added_later(build) -> None:
    """grpc's pollers block in epoll_wait before its listener joins the epoll: the
    interposer wakes them (an eventfd in the kernel epoll) so they wait on the VCL side
    too; without that the accept never happens."""
    log = run_scenario(build, "epoll_late_shadow")
    assert any("1 waiting thread(s) sent to the VCL-side epoll" in x for x in log), log
