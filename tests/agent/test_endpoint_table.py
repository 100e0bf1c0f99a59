"""Mode local: the agent builds the node's endpoint table from VPP's listeners of its
registered pods and the cluster's NetworkPolicies, and publishes it into every pod's
directory (env file names it) before the pod's vcl.conf; a change reaches every pod at
the next refresh; until NetworkPolicies are listed, and for pods an egress policy
selects, the table is empty (the kernel for everything, where the CNI enforces policy)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest
from injected_pods import injected_pod

from injector.agent.controller import Agent, AgentOptions
from injector.agent.endpoints import ENDPOINTS_NAME, Endpoint, decode
from injector.agent.status import agent_status
from vppctl_py import Vpp
from vppctl_py.testing import FakeVpp


@pytest.fixture
def agent(fake: FakeVpp, root: Path) -> Agent:
    return Agent(AgentOptions(node="node-a", root=str(root)),
                 connect=lambda: Vpp.connect(fake.api_socket, timeout=5.0))  # fmt: skip


def pod(name: str, ip: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    p = injected_pod(name)
    p["metadata"]["labels"] = labels or {"app": name}
    p["status"]["podIP"] = ip
    p["status"]["podIPs"] = [{"ip": ip}]
    return p


def table(root: Path, p: dict[str, Any]) -> tuple[int, set[str]]:
    data = (root / "pods" / p["metadata"]["uid"] / ENDPOINTS_NAME).read_bytes()
    generation, found = decode(data)
    return generation, {str(e) for e in found}


def listen(fake: FakeVpp, p: dict[str, Any], local: str) -> None:
    app = fake.attach_app(f"vcl-{p['metadata']['uid']}", f"{p['metadata']['name']}-ldp-1")
    fake.add_session(app, local, transport="CT:T")
    fake.add_session(app, local, transport="T")


def test_each_pod_gets_the_table_its_env_file_names(
    agent: Agent, fake: FakeVpp, root: Path
) -> None:
    web, db = pod("web", "10.244.0.5"), pod("db", "10.244.0.6")
    agent.sync_pods({p["metadata"]["uid"]: p for p in (web, db)})
    agent.sync_policies({})
    assert agent.reconcile()
    for p in (web, db):  # given before vcl.conf: empty, nothing listens yet
        assert table(root, p)[1] == set()
        env = (root / "pods" / p["metadata"]["uid"] / "vcl.env").read_text()
        assert f"VCL_ENDPOINTS={ENDPOINTS_NAME}\n" in env
    listen(fake, db, "0.0.0.0:5432")
    agent.refresh_endpoints()
    gen, found = table(root, web)
    assert found == {"10.244.0.6:5432/tcp"} and table(root, db) == (gen, found)
    inode = (root / "pods" / web["metadata"]["uid"] / ENDPOINTS_NAME).stat().st_ino
    agent.refresh_endpoints()  # nothing changed: nothing rewritten
    assert (root / "pods" / web["metadata"]["uid"] / ENDPOINTS_NAME).stat().st_ino == inode
    assert agent.metrics.endpoint_table_size._value.get() == 1
    assert agent.endpoints is not None
    assert agent.endpoints.plan.endpoints == {Endpoint(ipaddress.ip_address("10.244.0.6"), 5432)}


def test_policies_decide_who_is_served_and_who_uses_vpp(
    agent: Agent, fake: FakeVpp, root: Path
) -> None:
    web, db = pod("web", "10.244.0.5"), pod("db", "10.244.0.6")
    agent.sync_pods({p["metadata"]["uid"]: p for p in (web, db)})
    assert agent.reconcile()
    listen(fake, web, "0.0.0.0:80")
    listen(fake, db, "0.0.0.0:5432")
    agent.refresh_endpoints()
    assert table(root, web)[1] == set()  # NetworkPolicies not listed yet: kernel only
    guard_db = {"metadata": {"uid": "p1", "name": "db-in", "namespace": "demo"},
                "spec": {"podSelector": {"matchLabels": {"app": "db"}}}}  # fmt: skip
    agent.sync_policies({"p1": guard_db})
    agent.refresh_endpoints()
    assert table(root, web)[1] == {"10.244.0.5:80/tcp"}  # db is reached over the kernel
    assert agent.endpoints is not None
    (why,) = agent.endpoints.plan.pods[db["metadata"]["uid"]].not_served
    assert "db-in" in why[1]
    web_out = {"metadata": {"uid": "p2", "name": "web-out", "namespace": "demo"},
               "spec": {"podSelector": {"matchLabels": {"app": "web"}},
                        "policyTypes": ["Egress"]}}  # fmt: skip
    agent.policy_event("ADDED", web_out)
    agent.refresh_endpoints()
    assert table(root, web)[1] == set()  # web's egress is policed: it keeps to the kernel
    assert table(root, db)[1] == {"10.244.0.5:80/tcp"}
    agent.policy_event("DELETED", guard_db)
    agent.refresh_endpoints()
    assert table(root, db)[1] == {"10.244.0.5:80/tcp", "10.244.0.6:5432/tcp"}
    status = agent_status(agent)
    assert status["endpointTable"]["size"] == 2 and status["endpointTable"]["policiesKnown"]
    (web_status,) = [p for p in status["pods"] if p["name"] == "web"]
    assert web_status["endpoints"]["served"] == ["10.244.0.5:80/tcp"]
    assert web_status["endpoints"]["egressRestrictedBy"] == ["web-out"]
