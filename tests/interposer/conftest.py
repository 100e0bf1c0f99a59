"""Fixtures for the interposer tests: build patches/ once, run programs under LD_PRELOAD.

Every test runs against the plain library and the ASan/UBSan one (`make asan`), each with
two kinds of "VCL side" behind it. Without LDP, the VCL side is libc, so a moved socket is
a second kernel socket and every forwarding path runs for real ("libc"). The fake LDP
(patches/tests/fake_ldp.c) is libc too, but hands out fds offset by 2^18 like LDP's
2^LDP_SID_BIT, so an fd sent to the wrong side fails with EBADF; it runs in both wirings
the injector may use: preloaded after the interposer ("ldp-stacked") and dlopen'ed by it
through VCL_DUALSTACK_LDP ("ldp-lazy"). VCL_DUALSTACK_TEST=1 (test-only)
lets loopback addresses move; VCL_KERNEL_CIDRS=127.0.0.1/32 keeps 127.0.0.1 on the kernel,
so 127.0.0.1 is "kernel" and 127.0.0.2 / ::1 are "moved".
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

REPO = Path(__file__).resolve().parents[2]
PATCHES = REPO / "patches"
TIMEOUT = 60  # a hang is a failure, not a measurement

# The C test program's scenarios (patches/tests/dualstack_test.c), given to any test that
# takes a `scenario` argument; listen_both needs VCL_KERNEL_LISTEN=both and runs on its own.
SCENARIOS = [
    "tcp_blocking",
    "sockopt",
    "tcp_nonblocking",
    "epoll",
    "select",
    "dup",
    "fork",
    "threads",
    "udp",
    "ipv6",
    "vectors",
    "close_range",
]

# The rules every "kernel vs moved" test runs under.
TEST_RULES = {"VCL_DUALSTACK_TEST": "1", "VCL_KERNEL_CIDRS": "127.0.0.1/32"}


@dataclass(frozen=True)
class Build:
    """One build of the library, and how to run a program under it."""

    # The rules every "kernel vs moved" test runs under.
    rules: ClassVar[dict[str, str]] = TEST_RULES

    name: str
    lib: Path
    c_test: Path
    sanitized: bool
    vcl_side: str = "libc"  # or "ldp-stacked" / "ldp-lazy" (the fake LDP)
    fake_ldp: Path | None = None

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("VCL_", "LDP_")) and k not in ("LD_PRELOAD", "ASAN_OPTIONS")
        }
        preload = [str(self.lib)]
        if self.sanitized:
            # Uninstrumented programs (python3, curl) need the ASan runtime loaded first.
            runtime = _gcc_file("libasan.so")
            preload.insert(0, runtime)
            env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=0:exitcode=99"
            env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1:exitcode=98"
        if self.vcl_side == "ldp-stacked":
            preload.append(str(self.fake_ldp))
        if self.vcl_side == "ldp-lazy":
            env["VCL_DUALSTACK_LDP"] = str(self.fake_ldp)
        env["LD_PRELOAD"] = " ".join(preload)
        env.update(extra or {})
        return env

    def run(
        self, argv: list[str], extra: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv, env=self.env(extra), capture_output=True, text=True, timeout=TIMEOUT
        )

    @staticmethod
    def decisions(stderr: str) -> list[str]:
        """The library's log lines, without the "vcl-dualstack[pid]: " prefix."""
        return [x.split(": ", 1)[1] for x in stderr.splitlines() if x.startswith("vcl-dualstack[")]


def _gcc_file(name: str) -> str:
    out = subprocess.run(
        ["gcc", f"-print-file-name={name}"], capture_output=True, text=True, check=True
    )
    return str(Path(out.stdout.strip()).resolve())


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "scenario" in metafunc.fixturenames:
        metafunc.parametrize("scenario", SCENARIOS)


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Cases that need ::1 are skipped, with the reason, where the machine has no IPv6."""
    if _has_ipv6_loopback():
        return
    skip = pytest.mark.skip(reason="no IPv6 loopback (::1) on this machine")
    for item in items:
        if Path(item.path).parent != Path(__file__).parent:
            continue  # this hook sees the whole session's items
        params = getattr(getattr(item, "callspec", None), "params", {})
        if any(isinstance(v, str) and ("::" in v or v == "ipv6") for v in params.values()):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def built() -> None:
    for target in ([], ["asan"]):
        proc = subprocess.run(
            ["make", "-C", str(PATCHES), *target], capture_output=True, text=True, timeout=300
        )
        if proc.returncode != 0:
            pytest.fail(
                f"`make -C patches {' '.join(target)}` failed:\n{proc.stdout}\n{proc.stderr}"
            )


@pytest.fixture(
    scope="session",
    params=[
        "plain-libc",
        "plain-ldp-stacked",
        "plain-ldp-lazy",
        "asan-ldp-stacked",
        "asan-ldp-lazy",
    ],
)
def build(request: pytest.FixtureRequest, built: None) -> Build:
    flavour, side = request.param.split("-", 1)
    out = PATCHES / "build" / ("asan" if flavour == "asan" else "")
    return Build(
        name=request.param,
        lib=out / "libvcl_dualstack.so",
        c_test=out / "dualstack_test",
        sanitized=flavour == "asan",
        vcl_side=side,
        fake_ldp=out / "libfake_ldp.so",
    )


@pytest.fixture(scope="session")
def python() -> str:
    """The real interpreter (not a pyenv shim script, which would spawn many processes)."""
    return os.path.realpath(sys.executable)
