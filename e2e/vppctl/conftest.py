"""A client connected to a real VPP when VPP_API_SOCKET is set; every test here is
skipped with the reason otherwise. Namespace sockets go to VPP_E2E_SOCKET_DIR (default:
a temp dir, which works when VPP runs on this host and may write there). No API files are
needed: the client loads VPP's definitions from VPP itself."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from vppctl_py import Vpp


@pytest.fixture
def vpp() -> Iterator[Vpp]:
    api_socket = os.environ.get("VPP_API_SOCKET")
    if not api_socket:
        pytest.skip("VPP_API_SOCKET is not set: no real VPP to test against")
    with Vpp.connect(api_socket) as client:
        yield client


@pytest.fixture
def sock_dir(tmp_path: Path) -> Path:
    configured = os.environ.get("VPP_E2E_SOCKET_DIR")
    path = Path(configured) if configured else tmp_path / "socks"
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)  # VPP may run as another user
    return path
