"""A program whose allocator makes a system call inside its initialisation lock (jemalloc
closes a /proc file with syscall(SYS_close); redis-server is linked with it) runs under
the interposer: our first call into libc must not allocate. It did (dlopen), and
redis-server hung at start for good. The fake allocator (patches/tests/fake_alloc.c) does
what jemalloc does; the stacked wiring, where LDP follows us, still resolves libc with a
dlopen, so this holds for the lazy wiring (the injector's default) and a libc VCL side."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest


def test_allocator_calling_syscall_during_its_init(build: Any, python: str) -> None:
    if build.vcl_side == "ldp-stacked":
        pytest.skip("the stacked wiring finds libc with dlopen (patches/README.md)")
    env = build.env()
    env["LD_PRELOAD"] += f" {build.lib.parent / 'libfake_alloc.so'}"
    try:
        proc = subprocess.run([python, "-c", "print('alive')"], env=env, capture_output=True,
                              text=True, timeout=20)  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail("the program hung in its allocator's initialisation")
    assert (proc.returncode, proc.stdout) == (0, "alive\n"), proc.stderr
