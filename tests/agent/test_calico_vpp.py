"""calico-vpp mode end to end: the agent against FakeVpp (with Calico/VPP-style per-pod
loopbacks carrying the pod IPs) and a container runtime double speaking CRI over gRPC.

What users rely on: a pod's namespace is bound to the pod's own VPP interface and its
app socket made inside the pod's netns (nothing shared through the host but vcl.conf and
the env file); a pod not yet placeable waits, with a reason, and keeps what it has; a
new sandbox gets a new socket; a missing netns is never sent to VPP; CRI errors name
the runtime and prune nothing."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cri_double import FakeCri, serve_cri
from injected_pods import injected_pod
from recording_reporter import Recorder

from injector.agent.controller import Agent, AgentOptions
from injector.agent.cri import Cri, CriError, NetnsLocator, network_namespace
from injector.agent.network import CalicoVppNetwork
from injector.agent.registration import CALICO_VPP
from vppctl_py import Vpp
from vppctl_py.testing import FakeVpp


@pytest.fixture
def cri() -> FakeCri:
    return FakeCri()


@pytest.fixture
def endpoint(cri: FakeCri) -> Iterator[str]:
    with serve_cri(cri) as ep:
        yield ep


def sandbox_netns(netns_dir: Path, name: str) -> str:
    path = netns_dir / name
    path.touch()
    return str(path)


@pytest.fixture
def agent(fake: FakeVpp, root: Path, recorder: Recorder, endpoint: str) -> Iterator[Agent]:
    client = Cri(endpoint, timeout=2.0)
    yield Agent(
        AgentOptions(node="node-a", root=str(root), network=CALICO_VPP),
        connect=lambda: Vpp.connect(fake.api_socket, timeout=5.0),
        reporter=recorder,
        pod_network=CalicoVppNetwork(NetnsLocator(client)),
    )
    client.close()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def with_ip(pod: dict[str, Any], ip: str) -> dict[str, Any]:
    pod["status"]["podIP"] = ip
    return pod


def ours(fake: FakeVpp) -> dict[str, Any]:
    return {ns.ns_id: ns for ns in fake.model.namespaces.values() if ns.ns_id.startswith("vcl-")}


def test_pod_is_bound_to_its_interface_with_a_socket_in_its_netns(
    agent: Agent, fake: FakeVpp, cri: FakeCri, netns_dir: Path, root: Path, recorder: Recorder
) -> None:
    fake.add_interface("loop3", ["10.244.1.7/32"], vrf=3)  # Calico/VPP's per-pod loopback
    loop = fake.add_interface("loop4", ["10.244.1.8/32", "fd00::8/128"], vrf=4)
    web = with_ip(injected_pod("web"), "10.244.1.8")
    uid = web["metadata"]["uid"]
    netns = sandbox_netns(netns_dir, "cni-1111")
    cri.add(uid, netns, name="web")
    agent.sync_pods({uid: web})
    assert agent.reconcile()

    ns = ours(fake)[f"vcl-{uid}"]
    assert ns.sw_if_index == loop and ns.ip4_fib_id == 4  # the pod's own interface and VRF
    assert ns.sock_name == f"abstract:vcl-injector,netns_name={netns}"
    conf = (root / "pods" / uid / "vcl.conf").read_text()
    assert "app-socket-api abstract:vcl-injector" in conf
    assert not (root / "pods" / uid / "app.sock").exists()  # no socket shared via the host
    assert (root / "pods" / uid / "vcl.env").stat().st_mode & 0o777 == 0o600
    assert ("registered", "web", f"vcl-{uid}") in recorder.calls

    # Steady state: nothing re-made, one ListPodSandbox and no new status call per pass.
    before, calls = dict(ours(fake)), len(cri.calls)
    assert agent.reconcile()
    assert ours(fake).keys() == before.keys() and ours(fake)[f"vcl-{uid}"].index == ns.index
    assert cri.calls[calls:] == ["ListPodSandbox"]


def test_pod_without_ip_or_interface_waits_with_a_reason(
    agent: Agent, fake: FakeVpp, cri: FakeCri, netns_dir: Path, recorder: Recorder
) -> None:
    early = injected_pod("early")  # no status.podIP yet
    stray = with_ip(injected_pod("stray"), "192.168.9.9")  # not a Calico/VPP pod IP
    for pod in (early, stray):
        cri.add(pod["metadata"]["uid"], sandbox_netns(netns_dir, pod["metadata"]["name"]))
    agent.sync_pods({p["metadata"]["uid"]: p for p in (early, stray)})
    assert agent.reconcile()
    assert ours(fake) == {}
    events = {c[1]: c for c in recorder.of("event")}
    assert events["early"][2] == "WaitingForNetwork" and "podIP" in events["early"][4]
    assert "192.168.9.9" in events["stray"][4] and "Calico/VPP" in events["stray"][4]
    assert not events["early"][3]  # a Normal event: it is expected to resolve itself
    assert ("condition", "early", False, "WaitingForNetwork") in recorder.calls


def test_missing_netns_is_never_sent_to_vpp(
    agent: Agent, fake: FakeVpp, cri: FakeCri, netns_dir: Path, recorder: Recorder
) -> None:
    fake.add_interface("loop5", ["10.244.1.9/32"], vrf=5)
    pod = with_ip(injected_pod("ghost"), "10.244.1.9")
    cri.add(pod["metadata"]["uid"], str(netns_dir / "cni-gone"))  # no such file
    agent.sync_pods({pod["metadata"]["uid"]: pod})
    assert agent.reconcile()
    assert ours(fake) == {}  # VPP would have kept a half-made namespace
    (event,) = recorder.of("event")
    assert "cni-gone" in event[4] and "/var/run/netns" in event[4]


def test_new_sandbox_gets_a_new_socket_and_waiting_pods_keep_theirs(
    agent: Agent, fake: FakeVpp, cri: FakeCri, netns_dir: Path
) -> None:
    fake.add_interface("loop6", ["10.244.1.10/32"], vrf=6)
    pod = with_ip(injected_pod("api"), "10.244.1.10")
    uid = pod["metadata"]["uid"]
    first = cri.add(uid, sandbox_netns(netns_dir, "cni-a"))
    agent.sync_pods({uid: pod})
    assert agent.reconcile()
    assert ours(fake)[f"vcl-{uid}"].sock_name.endswith("cni-a")

    # The runtime restarts: no sandbox is ready for a moment. The pod waits; its
    # namespace and directory stay (pruning them would cut a running app off).
    first.ready = False
    assert agent.reconcile()
    assert f"vcl-{uid}" in ours(fake)
    assert agent.states[uid].state == "waiting"

    # A new sandbox with a new netns: the namespace is re-made with the new socket.
    cri.add(uid, sandbox_netns(netns_dir, "cni-b"))
    assert agent.reconcile()
    assert ours(fake)[f"vcl-{uid}"].sock_name.endswith("cni-b")
    assert agent.states[uid].state == "registered"

    agent.pod_event("DELETED", pod)
    assert agent.reconcile()
    assert ours(fake) == {}


def test_runtime_errors_name_the_runtime_and_prune_nothing(
    agent: Agent, fake: FakeVpp, cri: FakeCri, netns_dir: Path, recorder: Recorder, root: Path
) -> None:
    fake.add_interface("loop7", ["10.244.1.11/32"], vrf=7)
    pod = with_ip(injected_pod("db"), "10.244.1.11")
    uid = pod["metadata"]["uid"]
    cri.add(uid, sandbox_netns(netns_dir, "cni-db"))
    agent.sync_pods({uid: pod})
    assert agent.reconcile()
    cri.fail = grpc.StatusCode.UNAVAILABLE
    assert agent.reconcile()
    assert f"vcl-{uid}" in ours(fake) and (root / "pods" / uid).is_dir()
    message = recorder.of("event")[-1][4]
    assert "ListPodSandbox" in message and "UNAVAILABLE" in message


def test_unreachable_runtime_is_a_clear_error_not_a_hang() -> None:
    with tempfile.TemporaryDirectory(prefix="cri", dir="/tmp") as tmp:
        client = Cri(f"{tmp}/none.sock", timeout=0.5)
        with pytest.raises(CriError, match=r"none\.sock.*ListPodSandbox.*UNAVAILABLE"):
            client.ready_sandboxes()
        client.close()


def test_locator_takes_the_newest_ready_sandbox(cri: FakeCri, endpoint: str) -> None:
    cri.add("u1", "/run/netns/old", created_at=1)
    cri.add("u1", "/run/netns/new", created_at=2)
    cri.add("u1", "/run/netns/dead", created_at=3, ready=False)
    cri.add("u2", None)  # host network: no netns path
    locator = NetnsLocator(Cri(endpoint))
    locator.refresh(["u1", "u2", "u3"])
    assert locator.netns("u1") == "/run/netns/new"
    assert locator.netns("u2") is None and locator.netns("u3") is None


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        (
            {
                "info": '{"runtimeSpec": {"linux": {"namespaces": [{"type": "pid"}, {"type": "network", "path": "/var/run/netns/cni-9"}]}}}'
            },
            "/var/run/netns/cni-9",
        ),
        ({"info": '{"runtimeSpec": {"linux": {"namespaces": [{"type": "network"}]}}}'}, None),
        ({"info": "not json"}, None),
        ({"info": "[1, 2]"}, None),
        ({}, None),
    ],
)
def test_netns_from_verbose_info(info: dict[str, str], expected: str | None) -> None:
    assert network_namespace(info) == expected
