"""The agent's controller against FakeVpp, with a reporter that records what it would
tell Kubernetes (the HTTP-level path to Kubernetes is tested with the kube API double): registration reported
once (event, condition, annotation), node label following VPP, VPP restart → same
namespaces + evictions, VPP down → condition false, capacity refusal and bad status
reported, deleted pods cleaned up, nothing pruned before the first list; /status with
apps, workers, sessions and warnings."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from conn_pages import conn_page
from injected_pods import injected_pod
from recording_reporter import Recorder

from injector.agent.controller import Agent, AgentOptions
from injector.agent.server import create_app
from vppctl_py import Vpp
from vppctl_py.testing import FakeVpp, HeapModel

MIB = 1024 * 1024


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def agent(fake: FakeVpp, root: Path, recorder: Recorder) -> Agent:
    return Agent(
        AgentOptions(node="node-a", root=str(root)),
        connect=lambda: Vpp.connect(fake.api_socket, timeout=5.0),
        reporter=recorder,
    )


def by_uid(*pods: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["metadata"]["uid"]: p for p in pods}


def vcl_namespaces(fake: FakeVpp) -> set[str]:
    return {n for n in fake.namespace_ids() if n.startswith("vcl-")}


def test_registration_is_reported_once(agent: Agent, fake: FakeVpp, recorder: Recorder) -> None:
    web = injected_pod("web")
    agent.sync_pods(by_uid(web))
    assert agent.reconcile()
    assert vcl_namespaces(fake) == {f"vcl-{web['metadata']['uid']}"}
    assert recorder.of("node") == [("node", True)]
    assert recorder.of("condition") == [("condition", "web", True, "Registered")]
    assert recorder.of("registered") == [("registered", "web", f"vcl-{web['metadata']['uid']}")]
    assert [c[2] for c in recorder.of("event")] == ["Registered"]
    before = len(recorder.calls)
    assert agent.reconcile()
    assert len(recorder.calls) == before  # nothing changed, nothing said
    assert agent.metrics.pods_registered._value.get() == 1


def test_nothing_is_pruned_before_the_first_list(agent: Agent, fake: FakeVpp, root: Path) -> None:
    other = injected_pod("other")
    agent.sync_pods(by_uid(other))
    agent.reconcile()
    fresh = Agent(AgentOptions(node="node-a", root=str(root)), connect=agent.connect)
    assert fresh.reconcile()  # no list yet: must not touch VPP
    assert vcl_namespaces(fake) == {f"vcl-{other['metadata']['uid']}"}


def test_deleted_pod_is_cleaned_up(agent: Agent, fake: FakeVpp, root: Path) -> None:
    a, b = injected_pod("a"), injected_pod("b")
    agent.sync_pods(by_uid(a, b))
    agent.reconcile()
    agent.pod_event("DELETED", b)
    agent.reconcile()
    assert vcl_namespaces(fake) == {f"vcl-{a['metadata']['uid']}"}
    assert not (root / "pods" / b["metadata"]["uid"]).exists()


def test_vpp_restart_reregisters_and_evicts(
    agent: Agent, fake: FakeVpp, recorder: Recorder
) -> None:
    pods = [injected_pod("a"), injected_pod("b")]
    agent.sync_pods(by_uid(*pods))
    agent.reconcile()
    fake.restart()
    assert not agent.reconcile()  # the connection broke: VPP counts as down this pass
    assert recorder.of("node")[-1] == ("node", False)
    assert agent.reconcile()  # reconnects, sees a VPP that started later
    assert vcl_namespaces(fake) == {f"vcl-{p['metadata']['uid']}" for p in pods}
    assert sorted(c[1] for c in recorder.of("evict")) == ["a", "b"]
    assert any(c[2] == "VppRestarted" for c in recorder.of("event"))
    assert recorder.of("node")[-1] == ("node", True)
    assert agent.metrics.vpp_restarts._value.get() == 1


@pytest.mark.parametrize("agent_restarts_too", [False, True])
def test_restart_of_a_vpp_in_a_container_is_detected(
    tmp_path: Path, root: Path, agent_restarts_too: bool
) -> None:
    """VPP as pid 1 of its pod: the pid never changes, the start time does. An agent that
    restarted meanwhile reads the start time it kept on the host."""
    (tmp_path / "vpp").mkdir()
    with FakeVpp(tmp_path / "vpp", container_pid=1) as fake:
        recorder = Recorder()

        def new_agent() -> Agent:
            return Agent(AgentOptions(node="node-a", root=str(root)),
                         connect=lambda: Vpp.connect(fake.api_socket), reporter=recorder)  # fmt: skip

        agent = new_agent()
        pods = [injected_pod("a")]
        agent.sync_pods(by_uid(*pods))
        assert agent.reconcile()
        assert agent.reconcile()  # the same VPP: no restart
        fake.restart()
        assert fake.pid == 1
        if agent_restarts_too:
            agent = new_agent()
            agent.sync_pods(by_uid(*pods))
        else:
            assert not agent.reconcile()
        assert agent.reconcile()
        assert [c[1] for c in recorder.of("evict")] == ["a"]
        assert agent.metrics.vpp_restarts._value.get() == 1
        assert vcl_namespaces(fake) == {f"vcl-{pods[0]['metadata']['uid']}"}


def test_an_agent_restart_alone_is_no_vpp_restart(fake: FakeVpp, root: Path) -> None:
    recorder = Recorder()
    for _ in range(2):
        agent = Agent(AgentOptions(node="node-a", root=str(root)),
                      connect=lambda: Vpp.connect(fake.api_socket), reporter=recorder)  # fmt: skip
        agent.sync_pods(by_uid(injected_pod("a")))
        assert agent.reconcile()
        if agent.vpp is not None:
            agent.vpp.close()
    assert recorder.of("evict") == []


def test_vpp_down_sets_the_condition_false(agent: Agent, fake: FakeVpp, recorder: Recorder) -> None:
    web = injected_pod("web")
    agent.sync_pods(by_uid(web))
    agent.reconcile()
    fake.crash("test")
    assert not agent.reconcile()
    assert ("condition", "web", False, "VppDown") in recorder.calls
    assert agent.metrics.vpp_up._value.get() == 0


@pytest.mark.parametrize("heap", [HeapModel(size=55 * MIB + 32 * MIB + 7 * MIB + 3 * MIB)])
def test_capacity_refusal_is_reported(
    agent: Agent, fake: FakeVpp, recorder: Recorder, heap: HeapModel
) -> None:
    first, second = injected_pod("first"), injected_pod("second")
    agent.sync_pods(by_uid(first, second))
    agent.reconcile()
    assert fake.crashed is None
    failed = [c for c in recorder.of("event") if c[2] == "RegistrationFailed"]
    assert len(failed) == 1 and failed[0][3] is True and "main heap" in failed[0][4]
    assert agent.metrics.registration_errors.labels("capacity")._value.get() == 1


def test_unusable_status_is_reported(agent: Agent, recorder: Recorder) -> None:
    broken = injected_pod("broken")
    broken["metadata"]["annotations"]["vcl.io/status"] = "{"
    agent.sync_pods(by_uid(broken))
    agent.reconcile()
    assert ("condition", "broken", False, "InvalidStatus") in recorder.calls


@pytest.mark.anyio
async def test_status_endpoint(agent: Agent, fake: FakeVpp) -> None:
    web = injected_pod("web", annotations={"vcl.io/eventfd": "false"})
    agent.sync_pods(by_uid(web))
    agent.reconcile()
    ns_id = f"vcl-{web['metadata']['uid']}"
    app = fake.attach_app(ns_id, "envoy", workers=3, eventfd=False)
    fake.add_session(app, "10.0.0.1:8080", kind="listener")
    # a cut-through client session (VPP's CLI leaves its local side 0.0.0.0:0)
    fake.add_session(app, "0.0.0.0:0", "10.244.0.9:80", kind="connected", transport="CT:T")
    # what the pod's process counts of its connections (tests/agent/test_conn_pages.py)
    agent.reports.receive(web["metadata"]["uid"], b"vcl-report/1\tweb\t7\tenvoy\tconns\tp",
                          [conn_page(open_=(1, 3, 2), total=(5, 3, 2)), os.pidfd_open(os.getpid())])  # fmt: skip
    transport = httpx.ASGITransport(app=create_app(agent))
    async with httpx.AsyncClient(transport=transport, base_url="http://agent") as client:
        body = (await client.get("/status")).json()
        metrics = (await client.get("/metrics")).text
        health = (await client.get("/healthz")).json()
    assert body["node"] == "node-a" and body["vpp"]["up"] is True
    (entry,) = body["pods"]
    assert entry["state"] == "registered" and entry["namespaceId"] == ns_id
    assert entry["apps"] == [{"name": "envoy", "workers": 3}] and entry["workers"] == 3
    assert entry["sessions"] == 2
    assert entry["vppPeers"] == ["10.244.0.9"]
    assert entry["connections"]["open"] == {"vpp": 1, "kernel": 3, "loopback": 2}
    assert entry["connections"]["total"]["vpp"] == 5
    assert any("100% CPU" in w for w in entry["warnings"])
    assert 'vcl_agent_app_workers{namespace="demo",pod="web"} 3.0' in metrics
    assert health["synced"] is True


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_shutdown_withdraws_the_node_and_leaves_nothing_without_pods(
    fake: FakeVpp, root: Path
) -> None:
    recorder = Recorder()
    agent = Agent(AgentOptions(node="node-a", root=str(root)),
                  connect=lambda: Vpp.connect(fake.api_socket), reporter=recorder)  # fmt: skip
    web = injected_pod("web")
    agent.sync_pods(by_uid(web))
    assert agent.reconcile()
    agent.sync_pods({})  # the pods were recreated elsewhere (uninstall, step 2)
    assert agent.reconcile()
    agent.shutdown()
    assert recorder.of("node")[-1] == ("node", False)
    assert sorted(p.name for p in root.iterdir()) == []


def test_shutdown_with_pods_keeps_what_a_restarted_agent_needs(fake: FakeVpp, root: Path) -> None:
    agent = Agent(AgentOptions(node="node-a", root=str(root)),
                  connect=lambda: Vpp.connect(fake.api_socket), reporter=Recorder())  # fmt: skip
    agent.sync_pods(by_uid(injected_pod("web")))
    assert agent.reconcile()
    agent.shutdown()
    assert (root / "vpp-started").exists() and any((root / "pods").iterdir())
