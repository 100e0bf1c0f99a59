"""calico-vpp mode against a real VPP (VPP_API_SOCKET; skipped with the reason otherwise):
a Calico/VPP-style per-pod loopback carrying the pod IP, a real network namespace made
with `ip netns add` standing for the pod sandbox's, and the CRI double answering with its
path. The agent must bind the pod's namespace to that loopback and VPP must create the
abstract app socket inside that netns (seen in the netns' /proc/net/unix). Needs root
(ip netns) and VPP on this host."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cri_double import FakeCri, serve_cri
from injected_pods import injected_pod

from injector.agent.controller import Agent, AgentOptions
from injector.agent.cri import Cri, NetnsLocator
from injector.agent.network import CalicoVppNetwork
from injector.agent.registration import ABSTRACT_SOCKET_NAME, CALICO_VPP
from vppctl_py import Vpp

SOCKET = os.environ.get("VPP_API_SOCKET")
pytestmark = [
    pytest.mark.skipif(
        not SOCKET, reason="no real VPP: set VPP_API_SOCKET to its binary API socket"
    ),
    pytest.mark.skipif(
        shutil.which("ip") is None or os.geteuid() != 0, reason="needs root and iproute2 (ip netns)"
    ),
]
POD_IP = "10.98.0.7"
POD_VRF = 4097  # a table of its own, as Calico/VPP gives each pod


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"vcle2e-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    yield name
    subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.fixture
def pod_loopback(vpp: Vpp) -> Iterator[str]:
    """What Calico/VPP makes for every pod: a loopback with the pod IP, in the pod's VRF."""
    vpp.cli(f"ip table add {POD_VRF}")
    name = vpp.cli("create loopback interface").strip()
    try:
        vpp.cli(f"set interface ip table {name} {POD_VRF}")
        vpp.cli(f"set interface ip address {name} {POD_IP}/32")
        vpp.cli(f"set interface state {name} up")
        yield name
    finally:
        vpp.cli(f"delete loopback interface intfc {name}")
        vpp.cli(f"ip table del {POD_VRF}")


def test_pod_namespace_on_its_loopback_with_socket_in_its_netns(
    vpp: Vpp, netns: str, pod_loopback: str, root: Path
) -> None:
    pod = injected_pod("calico-e2e")
    pod["status"]["podIP"] = POD_IP
    uid = pod["metadata"]["uid"]
    cri = FakeCri()
    cri.add(uid, f"/var/run/netns/{netns}")
    with serve_cri(cri) as endpoint:
        client = Cri(endpoint)
        agent = Agent(
            AgentOptions(node="e2e", root=str(root), network=CALICO_VPP),
            connect=lambda: Vpp.connect(SOCKET or "", timeout=5.0),
            pod_network=CalicoVppNetwork(NetnsLocator(client)),
        )
        try:
            agent.sync_pods({uid: pod})
            assert agent.reconcile()
            assert agent.states[uid].state == "registered", agent.states[uid]
            (ns,) = [n for n in vpp.app_namespaces() if n.ns_id == f"vcl-{uid}"]
            assert ns.interface == pod_loopback
            assert (
                ns.sock_name == f"abstract:{ABSTRACT_SOCKET_NAME},netns_name=/var/run/netns/{netns}"
            )
            listing = subprocess.run(
                ["ip", "netns", "exec", netns, "cat", "/proc/net/unix"],
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            # VPP 26.06 leaves the name's last character out of the abstract address.
            assert f"@{ABSTRACT_SOCKET_NAME[:-1]}" in listing
            agent.pod_event("DELETED", pod)
            assert agent.reconcile()
            assert f"vcl-{uid}" not in {n.ns_id for n in vpp.app_namespaces()}
        finally:
            agent.pod_event("DELETED", pod)
            agent.reconcile()
            client.close()
