"""Fixtures for the vppctl_py tests: a FakeVpp with VPP 26.06's captured message table,
a client connected to it, and the path of the recorded fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from vppctl_py import Vpp
from vppctl_py.testing import FakeVpp, load_message_table


@pytest.fixture(scope="session")
def vpp_fixtures() -> Path:
    """The recorded VPP 26.06 fixtures (see tests/fixtures/vpp/README.md)."""
    return Path(__file__).resolve().parents[1] / "fixtures" / "vpp"


@pytest.fixture(scope="session")
def message_table(vpp_fixtures: Path) -> list[tuple[int, str]]:
    return load_message_table(vpp_fixtures / "message-table.json")


@pytest.fixture
def fake(tmp_path: Path, message_table: list[tuple[int, str]]) -> Iterator[FakeVpp]:
    (tmp_path / "vpp").mkdir()
    with FakeVpp(tmp_path / "vpp", message_table=message_table) as server:
        yield server


@pytest.fixture
def vpp(fake: FakeVpp) -> Iterator[Vpp]:
    with Vpp.connect(fake.api_socket, timeout=5.0) as client:
        yield client


@pytest.fixture
def sock_dir(tmp_path: Path) -> Path:
    """Where the contract tests put namespace sockets (the fake binds them for real)."""
    path = tmp_path / "socks"
    path.mkdir()
    return path
