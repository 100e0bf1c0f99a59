"""Mode local with a loopback per pod (the agent's default): each registered pod's VPP
loopback carries its IPs in the node VRF, its app namespace is bound to it; a pod without
an IP yet waits; a pod whose IP changed gets a new loopback and its namespace is re-bound;
a deleted pod's namespace and then its loopback go; a clash is reported, not fatal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from injected_pods import injected_pod

from injector.agent.controller import Agent, AgentOptions
from vppctl_py import Vpp
from vppctl_py.testing import FakeVpp

VRF = 1985


@pytest.fixture
def agent(fake: FakeVpp, root: Path) -> Agent:
    return Agent(AgentOptions(node="node-a", root=str(root), pod_interfaces=True),
                 connect=lambda: Vpp.connect(fake.api_socket, timeout=5.0))  # fmt: skip


def pod(name: str, *ips: str) -> dict[str, Any]:
    p = injected_pod(name)
    if ips:
        p["status"]["podIP"] = ips[0]
        p["status"]["podIPs"] = [{"ip": ip} for ip in ips]
    return p


def loopbacks(fake: FakeVpp) -> dict[str, tuple[set[str], int]]:
    return {
        i.tag: ({str(a.ip) for a in i.addresses}, i.vrf)
        for i in fake.model.interfaces.values()
        if i.tag.startswith("vcl:")
    }


def bound(fake: FakeVpp, p: dict[str, Any]) -> str:
    ns = fake.model.by_id(f"vcl-{p['metadata']['uid']}")
    assert ns is not None
    return fake.model.interfaces[ns.sw_if_index].tag


def test_each_pod_gets_a_loopback_with_its_ips_and_its_namespace_is_bound_to_it(
    agent: Agent, fake: FakeVpp
) -> None:
    web, db = pod("web", "10.244.0.5", "fd00:244::5"), pod("db", "10.244.0.6")
    agent.sync_pods({p["metadata"]["uid"]: p for p in (web, db)})
    assert agent.reconcile()
    uid_w, uid_d = web["metadata"]["uid"], db["metadata"]["uid"]
    assert loopbacks(fake) == {
        f"vcl:{uid_w}": ({"10.244.0.5", "fd00:244::5"}, VRF),
        f"vcl:{uid_d}": ({"10.244.0.6"}, VRF),
    }
    assert bound(fake, web) == f"vcl:{uid_w}" and bound(fake, db) == f"vcl:{uid_d}"
    assert VRF in fake.model.fibs
    assert agent.reconcile()  # again: nothing new
    assert len(loopbacks(fake)) == 2


def test_a_pod_without_an_ip_waits_and_a_deleted_pod_loses_its_loopback(
    agent: Agent, fake: FakeVpp
) -> None:
    early, web = pod("early"), pod("web", "10.244.0.5")
    agent.sync_pods({p["metadata"]["uid"]: p for p in (early, web)})
    assert agent.reconcile()
    assert agent.states[early["metadata"]["uid"]].message.startswith("waiting for the pod's IP")
    assert set(loopbacks(fake)) == {f"vcl:{web['metadata']['uid']}"}
    agent.sync_pods({early["metadata"]["uid"]: early})
    assert agent.reconcile()
    assert loopbacks(fake) == {}
    assert f"vcl-{web['metadata']['uid']}" not in fake.namespace_ids()


def test_a_new_ip_gets_a_new_loopback_and_the_namespace_follows(
    agent: Agent, fake: FakeVpp
) -> None:
    web = pod("web", "10.244.0.5")
    agent.sync_pods({web["metadata"]["uid"]: web})
    assert agent.reconcile()
    web["status"]["podIP"], web["status"]["podIPs"] = "10.244.0.9", [{"ip": "10.244.0.9"}]
    agent.sync_pods({web["metadata"]["uid"]: web})
    assert agent.reconcile()
    assert loopbacks(fake) == {f"vcl:{web['metadata']['uid']}": ({"10.244.0.9"}, VRF)}
    assert bound(fake, web) == f"vcl:{web['metadata']['uid']}"


def test_an_address_vpp_refuses_is_reported_and_the_rest_go_on(agent: Agent, fake: FakeVpp) -> None:
    fake.add_interface("uplink", ["10.244.0.5/24"])  # the address is taken in VPP
    clash, ok = pod("clash", "10.244.0.5"), pod("ok", "10.244.0.6")
    agent.sync_pods({p["metadata"]["uid"]: p for p in (clash, ok)})
    assert agent.reconcile()
    message = agent.states[clash["metadata"]["uid"]].message
    assert "VPP refused the pod's interface for 10.244.0.5" in message and "-105" in message
    assert set(loopbacks(fake)) == {f"vcl:{ok['metadata']['uid']}"}
