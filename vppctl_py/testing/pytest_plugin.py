"""pytest fixtures for code that talks to VPP through vppctl_py.

Enable with `pytest_plugins = ["vppctl_py.testing.pytest_plugin"]` in a conftest.py.
`fake_vpp` is a started FakeVpp (stopped after the test); `fake_vpp_client` a Vpp
connected to it. VPP_FAKE_DEFINITIONS names the recorded get_api_json text the fake
speaks and serves (required); set VPP_FAKE_MESSAGE_TABLE to a recorded
message-table.json to use that VPP's real message ids (otherwise they are generated).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from vppctl_py.client import Vpp
from vppctl_py.testing.server import FakeVpp
from vppctl_py.testing.wire import load_message_table


@pytest.fixture
def fake_vpp(tmp_path: Path) -> Iterator[FakeVpp]:
    table_path = os.environ.get("VPP_FAKE_MESSAGE_TABLE")
    table = load_message_table(Path(table_path)) if table_path else None
    workdir = tmp_path / "fake-vpp"
    workdir.mkdir()
    with FakeVpp(workdir, message_table=table) as fake:
        yield fake


@pytest.fixture
def fake_vpp_client(fake_vpp: FakeVpp) -> Iterator[Vpp]:
    with Vpp.connect(fake_vpp.api_socket) as vpp:
        yield vpp
