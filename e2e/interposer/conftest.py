"""Fixtures for the interposer suite against a real VPP: the CI suite with stock LDP behind.

Needs VPP_LDP_LIB (path to libvcl_ldpreload.so) and VCL_CONFIG (a vcl.conf whose app socket
reaches a running VPP, with app-scope-local so 127.0.0.2 traffic is served by VPP's
cut-through); skips with the reason otherwise. Each test runs in both wirings the injector
may use: "stacked" (LD_PRELOAD="libvcl_dualstack.so libvcl_ldpreload.so") and "lazy"
(LD_PRELOAD=libvcl_dualstack.so, VCL_DUALSTACK_LDP=libvcl_ldpreload.so), LDP_SID_BIT=20.
"""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CI_DIR = REPO / "tests" / "interposer"


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


def _vpp_answers(path: str) -> bool:
    if path.startswith("abstract:"):
        name = path.removeprefix("abstract:").split(",")[0]
        address: str = "\0" + name[:-1]  # VPP 26.06 drops the last character (see README)
    else:
        address = path.removeprefix("unix:")
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        try:
            s.connect(address)
        except OSError:
            return False
    return True


@dataclass(frozen=True)
class LdpBuild:
    """The plain CI build with real LDP behind it, in one of the two wirings."""

    base: Any
    ldp: str
    wiring: str
    rules: Mapping[str, str]
    sanitized: bool = False

    @property
    def c_test(self) -> Path:
        return Path(self.base.c_test)

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = self.base.env(extra)
        env["LDP_SID_BIT"] = "20"
        env["VCL_CONFIG"] = os.environ["VCL_CONFIG"]
        if self.wiring == "stacked":
            env["LD_PRELOAD"] = f"{env['LD_PRELOAD']} {self.ldp}"
        else:
            env["VCL_DUALSTACK_LDP"] = self.ldp
        return env

    def run(
        self, argv: list[str], extra: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv, env=self.env(extra), capture_output=True, text=True, timeout=CI.TIMEOUT
        )

    decisions = staticmethod(CI.Build.decisions)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "scenario" in metafunc.fixturenames:
        metafunc.parametrize("scenario", CI.SCENARIOS)


@pytest.fixture(scope="session", params=["stacked", "lazy"])
def build(request: pytest.FixtureRequest) -> LdpBuild:
    ldp = os.environ.get("VPP_LDP_LIB")
    if not ldp or not Path(ldp).is_file():
        pytest.skip("VPP_LDP_LIB is not set to libvcl_ldpreload.so: no real LDP to test against")
    conf = os.environ.get("VCL_CONFIG")
    if not conf or not Path(conf).is_file():
        pytest.skip("VCL_CONFIG is not set to a vcl.conf for a running VPP")
    sock = _app_socket(Path(conf))
    if not sock or not _vpp_answers(sock):
        pytest.skip(f"VPP does not answer on its app socket ({sock or 'none configured'})")
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
    return LdpBuild(base=base, ldp=ldp, wiring=request.param, rules=CI.TEST_RULES)


@pytest.fixture(scope="session")
def python() -> str:
    return os.path.realpath(sys.executable)
