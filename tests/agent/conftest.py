"""Agent test fixtures: a FakeVpp (VPP 26.06's wire protocol) and a host root directory."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from vppctl_py import Vpp
from vppctl_py.testing import FakeVpp, HeapModel, load_message_table

MESSAGE_TABLE = Path(__file__).resolve().parents[1] / "fixtures" / "vpp" / "message-table.json"


@pytest.fixture(scope="session")
def message_table() -> list[tuple[int, str]]:
    return load_message_table(MESSAGE_TABLE)


@pytest.fixture
def heap() -> HeapModel:
    return HeapModel()


@pytest.fixture
def fake(
    tmp_path: Path, message_table: list[tuple[int, str]], heap: HeapModel
) -> Iterator[FakeVpp]:
    (tmp_path / "vpp").mkdir()
    with FakeVpp(tmp_path / "vpp", message_table=message_table, heap=heap) as server:
        yield server


@pytest.fixture
def vpp(fake: FakeVpp) -> Iterator[Vpp]:
    with Vpp.connect(fake.api_socket, timeout=5.0) as client:
        yield client


def short_dir(prefix: str) -> Iterator[Path]:
    """A fresh directory with a short path (pytest's tmp_path is long), removed after."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def root() -> Iterator[Path]:
    # <root>/pods/<uid>/app.sock must fit a unix socket name (107 bytes).
    yield from short_dir("vcl")


@pytest.fixture
def netns_dir() -> Iterator[Path]:
    # Stands for the host's /var/run/netns (VPP's netns field is string[64]).
    yield from short_dir("ns")
