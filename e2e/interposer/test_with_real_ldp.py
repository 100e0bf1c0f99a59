"""The interposer's CI scenarios with stock LDP and a real VPP behind it.

Covers, in the stacked and the lazy wiring: every C test program scenario (127.0.0.1 on the
kernel, 127.0.0.2 and ::1 through VPP), the asyncio echo server/clients, and a program
whose sockets are all loopback keeping the kernel. Skipped without VPP_LDP_LIB + a VPP.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

CI_DIR = Path(__file__).resolve().parents[2] / "tests" / "interposer"


def test_c_scenario(build, scenario: str) -> None:
    proc = build.run([str(build.c_test), scenario], {**build.rules, "VCL_DUALSTACK_DEBUG": "1"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"ok {scenario}"


def test_listen_both(build) -> None:
    env = {**build.rules, "VCL_KERNEL_LISTEN": "both"}
    proc = build.run([str(build.c_test), "listen_both"], env)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(("host", "path"), [("127.0.0.2", 2), ("127.0.0.1", 1)])
def test_asyncio_echo(build, python: str, host: str, path: int) -> None:
    proc = build.run([python, str(CI_DIR / "asyncio_echo.py"), host, host], build.rules)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"server": path, "clients": {host: [path]}}


def test_loopback_only_program_stays_on_the_kernel(build, python: str) -> None:
    proc = build.run([python, str(CI_DIR / "path_probe.py"), "udp", "127.0.0.2:9", "[::1]:9"])
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [1, 1]
