"""Fixtures for the interposer suite against a real VPP: the CI suite with stock LDP behind.

Needs VPP_LDP_LIB (path to libvcl_ldpreload.so), VCL_CONFIG (a vcl.conf whose app socket
reaches a running VPP) and VCL_E2E_MOVED: an IPv4 address of the VPP interface that app
namespace is bound to (VCL_E2E_MOVED6: an IPv6 one, for the ipv6 scenario); skips with
the reason otherwise. Unlike CI, the production rules apply (no VCL_DUALSTACK_TEST):
loopback stays on the kernel, the moved address goes to VPP.

VPP 26.06 never connects a VCL app to its own listener: application_local.c skips the
cut-through for it and sends the connect to the global table, which routes it as TCP to
VPP's own address, where ip4-local drops the SYN as 'spoofed local-address' (127/8 gets
SESSION_E_NOROUTE before that). So the moved servers of the C scenarios and of the
asyncio clients are another app's: the echo peer (peer.py), started per wiring, whose
port reaches the programs as DUALSTACK_TEST_PEER_PORT.

Every program runs in a network namespace of its own with only `lo` up: should a moved
socket reach the kernel by mistake, it finds no route instead of leaving the machine.

Each test runs in both wirings the injector may use: "stacked"
(LD_PRELOAD="libvcl_dualstack.so libvcl_ldpreload.so") and "lazy"
(LD_PRELOAD=libvcl_dualstack.so, VCL_DUALSTACK_LDP=libvcl_ldpreload.so), LDP_SID_BIT=20.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import ipaddress
import os
import re
import select
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CI_DIR = REPO / "tests" / "interposer"
PEER = Path(__file__).with_name("peer.py")


def _ci_conftest() -> Any:
    spec = importlib.util.spec_from_file_location("interposer_ci_conftest", CI_DIR / "conftest.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


CI = _ci_conftest()


def _app_socket(conf: Path) -> str | None:
    found = re.search(r"app-socket-api\s+(\S+)", conf.read_text())
    return os.environ.get("VCL_VPP_SAPI_SOCKET") or (found.group(1) if found else None)


SO_ACCEPTCON = 0x10000  # /proc/net/unix Flags of a listening socket


def _app_socket_there(path: str) -> bool:
    """Looks for VPP's app socket without connecting: VPP 26.06 hangs after a score of
    app-socket connections that close before attaching (see patches/src/ds_syms.c)."""
    if path.startswith("abstract:"):
        name = "@" + path.removeprefix("abstract:").split(",")[0][:-1]  # VPP drops the last
        listening = [line.split() for line in Path("/proc/net/unix").read_text().splitlines()]
        return any(f[-1] == name and int(f[3], 16) & SO_ACCEPTCON for f in listening if len(f) > 7)
    return Path(path.removeprefix("unix:")).is_socket()


@dataclass(frozen=True)
class LdpBuild:
    """The plain CI build with real LDP behind it, in one of the two wirings."""

    base: Any
    ldp: str
    wiring: str
    rules: Mapping[str, str]
    netns: str
    moved: str
    moved6: str | None
    app_socket: str  # as vcl.conf names it
    sanitized: bool = False

    @property
    def c_test(self) -> Path:
        return Path(self.base.c_test)

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = self.base.env(extra)
        env["LDP_SID_BIT"] = "20"
        env["VCL_CONFIG"] = (extra or {}).get("VCL_CONFIG") or os.environ["VCL_CONFIG"]
        if self.wiring == "stacked":
            env["LD_PRELOAD"] = f"{env['LD_PRELOAD']} {self.ldp}"
        else:
            env["VCL_DUALSTACK_LDP"] = self.ldp
        return env

    def run(
        self, argv: list[str], extra: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        proc = self.start(argv, extra)
        try:
            out, err = proc.communicate(timeout=CI.TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def start(
        self, argv: list[str], extra: Mapping[str, str] | None = None
    ) -> subprocess.Popen[str]:
        """A program left running (a server), in the netns, its stdout a pipe."""
        return subprocess.Popen(
            ["ip", "netns", "exec", self.netns, *argv],
            env=self.env(extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    decisions = staticmethod(CI.Build.decisions)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "scenario" in metafunc.fixturenames:
        metafunc.parametrize("scenario", CI.SCENARIOS)


@pytest.fixture(scope="session")
def netns() -> Iterator[str]:
    """A network namespace with only loopback, for every program the suite runs."""
    if shutil.which("ip") is None or os.geteuid() != 0:
        pytest.skip("needs root and iproute2 to run the programs in a network namespace")
    name = f"vcl-e2e-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.fixture(scope="session", params=["stacked", "lazy"])
def build(request: pytest.FixtureRequest, netns: str) -> Iterator[LdpBuild]:
    moved = os.environ.get("VCL_E2E_MOVED", "")
    try:
        address = ipaddress.ip_address(moved)
        if address.version != 4 or address.is_loopback:
            raise ValueError
    except ValueError:
        pytest.skip(
            "VCL_E2E_MOVED is not set to an IPv4 address of VPP's interface for the app "
            f"namespace (got {moved!r}; VPP does not route 127/8 between apps)"
        )
    moved6 = os.environ.get("VCL_E2E_MOVED6") or None
    ldp = os.environ.get("VPP_LDP_LIB")
    if not ldp or not Path(ldp).is_file():
        pytest.skip("VPP_LDP_LIB is not set to libvcl_ldpreload.so: no real LDP to test against")
    conf = os.environ.get("VCL_CONFIG")
    if not conf or not Path(conf).is_file():
        pytest.skip("VCL_CONFIG is not set to a vcl.conf for a running VPP")
    sock = _app_socket(Path(conf))
    if not sock or not _app_socket_there(sock):
        pytest.skip(f"VPP's app socket is not there ({sock or 'none configured'})")
    proc = subprocess.run(["make", "-C", str(REPO / "patches")], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"`make -C patches` failed:\n{proc.stdout}\n{proc.stderr}")
    out = REPO / "patches" / "build"
    base = CI.Build(
        name="plain",
        lib=out / "libvcl_dualstack.so",
        c_test=out / "dualstack_test",
        sanitized=False,
    )
    rules = {"DUALSTACK_TEST_MOVED": moved, "DUALSTACK_TEST_MOVED6": moved6 or ""}
    build = LdpBuild(
        base=base,
        ldp=ldp,
        wiring=request.param,
        rules=rules,
        netns=netns,
        moved=moved,
        moved6=moved6,
        app_socket=sock,
    )
    with _peer(build) as port:
        yield dataclasses.replace(build, rules={**rules, "DUALSTACK_TEST_PEER_PORT": str(port)})


@contextlib.contextmanager
def _peer(build: LdpBuild) -> Iterator[int]:
    """The echo peer (peer.py) on the moved addresses, a VCL app of its own, in this wiring."""
    hosts = [build.moved, *([build.moved6] if build.moved6 else [])]
    proc = build.start([sys.executable, str(PEER), *hosts])
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], CI.TIMEOUT)
        line = proc.stdout.readline() if ready else ""  # the port, once every server listens
        if not line.strip().isdigit():
            pytest.fail(f"the echo peer did not start (exit {proc.poll()}): {line!r}")
        yield int(line)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def python() -> str:
    return os.path.realpath(sys.executable)
