"""What the agent says when it cannot use VPP, through the real client and FakeVpp:
- a VPP of an unsupported release (its message CRCs differ): one Warning Event on the
  node naming the messages and both versions, the node label removed, /readyz 503 with
  the reason, /healthz still alive (no crash loop), no repeat per retry; once a
  supported VPP answers, the label and readiness come back with a VppReady event;
- VPP unreachable: the same signals with reason VppUnreachable;
- the agent connects with no VPP API files on disk (definitions from VPP itself)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from injected_pods import injected_pod
from recording_reporter import Recorder
from waiting import eventually

from injector.agent.controller import Agent, AgentOptions
from injector.agent.server import create_app
from vppctl_py import Vpp
from vppctl_py.testing import FakeVpp

DEFINITIONS = Path(__file__).resolve().parents[1] / "fixtures" / "vpp" / "api-definitions.json"


@pytest.fixture
def skewed(tmp_path: Path) -> Iterator[FakeVpp]:
    """A VPP whose app_namespace_add_del_v4 is not 26.06's."""
    docs: list[dict[str, Any]] = json.loads(DEFINITIONS.read_text())
    for doc in docs:
        for msg in doc["messages"]:
            if msg[0] == "app_namespace_add_del_v4":
                msg[-1]["crc"] = "0x12345678"
    (tmp_path / "skewed").mkdir()
    (tmp_path / "skewed" / "defs.json").write_text(json.dumps(docs))
    with FakeVpp(tmp_path / "skewed", definitions=tmp_path / "skewed" / "defs.json") as fake:
        yield fake


class Switch:
    """Which VPP the agent's connect() reaches (an upgrade swaps it)."""

    def __init__(self, socket: str) -> None:
        self.socket = socket

    def connect(self) -> Vpp:
        return Vpp.connect(self.socket, timeout=5.0)


async def probe(agent: Agent, path: str) -> tuple[int, dict[str, Any]]:
    transport = httpx.ASGITransport(app=create_app(agent))
    async with httpx.AsyncClient(transport=transport, base_url="http://agent") as client:
        response = await client.get(path)
    return response.status_code, response.json()


@pytest.mark.anyio
async def test_unsupported_vpp_is_reported_on_the_node(
    skewed: FakeVpp, fake: FakeVpp, root: Path
) -> None:
    recorder = Recorder()
    switch = Switch(skewed.api_socket)
    agent = Agent(
        AgentOptions(node="node-a", root=str(root)), connect=switch.connect, reporter=recorder
    )
    agent.sync_pods({})
    assert not agent.reconcile()
    assert not agent.reconcile()  # retried: nothing said twice
    assert recorder.of("node") == [("node", False)]
    ((_, reason, warning, message),) = recorder.of("node_event")
    assert (reason, warning) == ("VppUnsupportedRelease", True)
    assert "VPP 26.06-release is not a release vppctl_py supports (26.06)" in message
    assert "app_namespace_add_del_v4 (26.06 0x42c1d824, this VPP 0x12345678)" in message
    eventually("the refused connections closed", lambda: skewed.client_count == 0)
    assert await probe(agent, "/healthz") == (
        200,
        {"status": "ok", "synced": True, "vppUp": False, "vppError": message},
    )
    status, body = await probe(agent, "/readyz")
    assert (status, body["status"], body["vppError"]) == (503, "not ready", message)
    assert (await probe(agent, "/status"))[1]["vpp"] == {"up": False, "error": message}

    switch.socket = fake.api_socket  # VPP upgraded to a supported release
    assert agent.reconcile()
    assert recorder.of("node")[-1] == ("node", True)
    assert recorder.of("node_event")[-1][1:3] == ("VppReady", False)
    assert await probe(agent, "/readyz") == (200, {"status": "ok", "synced": True, "vppUp": True})


@pytest.mark.anyio
async def test_unreachable_vpp_is_reported_on_the_node(root: Path, tmp_path: Path) -> None:
    recorder = Recorder()
    agent = Agent(
        AgentOptions(node="node-a", root=str(root)),
        connect=Switch(str(tmp_path / "api.sock")).connect,
        reporter=recorder,
    )
    agent.sync_pods({"u": injected_pod("web")})
    assert not agent.reconcile()
    ((_, reason, _, message),) = recorder.of("node_event")
    assert reason == "VppUnreachable"
    assert "no such socket (is VPP running?)" in message
    assert (await probe(agent, "/readyz"))[0] == 503


def test_agent_connects_without_api_files(fake: FakeVpp, root: Path) -> None:
    import os

    assert "VPP_API_DIR" not in os.environ
    recorder = Recorder()
    agent = Agent(
        AgentOptions(node="node-a", root=str(root)),
        connect=Switch(fake.api_socket).connect,
        reporter=recorder,
    )
    web = injected_pod("web")
    agent.sync_pods({web["metadata"]["uid"]: web})
    assert agent.reconcile()
    assert f"vcl-{web['metadata']['uid']}" in fake.namespace_ids()
    assert recorder.of("node_event") == [
        ("node_event", "VppReady", False, f"VPP answers at {fake.api_socket}")
    ]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
