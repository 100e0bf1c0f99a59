"""Fixtures for the interposer tests: build patches/ once, run programs under LD_PRELOAD.

Every test runs against two builds: the plain library and the ASan/UBSan one (`make asan`).
Without LDP behind it, the library's "VCL side" is libc, so a moved socket is a second
kernel socket and every forwarding path runs for real. VCL_DUALSTACK_TEST=1 (test-only)
lets loopback addresses move; VCL_KERNEL_CIDRS=127.0.0.1/32 keeps 127.0.0.1 on the kernel,
so 127.0.0.1 is "kernel" and 127.0.0.2 / ::1 are "moved".
"""

from __future__ import annotations

import os
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


@pytest.fixture(scope="session", params=["plain", "asan"])
def build(request: pytest.FixtureRequest, built: None) -> Build:
    out = PATCHES / "build" / ("asan" if request.param == "asan" else "")
    return Build(
        name=request.param,
        lib=out / "libvcl_dualstack.so",
        c_test=out / "dualstack_test",
        sanitized=request.param == "asan",
    )


@pytest.fixture(scope="session")
def python() -> str:
    """The real interpreter (not a pyenv shim script, which would spawn many processes)."""
    return os.path.realpath(sys.executable)
