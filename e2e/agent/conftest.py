"""The real VPP the agent e2e tests run against (VPP_API_SOCKET), and the host root
(VCL_E2E_ROOT, default /tmp/vcl-e2e, where VPP on this host can create sockets)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from vppctl_py import Vpp

SOCKET = os.environ.get("VPP_API_SOCKET")


@pytest.fixture
def vpp() -> Iterator[Vpp]:
    assert SOCKET
    with Vpp.connect(SOCKET, timeout=5.0) as client:
        yield client


@pytest.fixture
def root() -> Iterator[Path]:
    path = Path(os.environ.get("VCL_E2E_ROOT", "/tmp/vcl-e2e"))
    path.mkdir(parents=True, exist_ok=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)
