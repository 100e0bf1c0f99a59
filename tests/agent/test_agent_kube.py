"""The agent end to end over HTTP: the real kubernetes client against a Kubernetes API
double (tests/support/kube_double.py, shaped on the apiserver captures) and FakeVpp.
Covers: list + watch of one node's pods, 410 Gone → relist, dropped watch → relist with
nothing missed; registration visible as annotation, readiness condition, events and the
node label; deletion cleans VPP; a VPP restart evicts through the Eviction API (and a
PDB-blocked eviction is counted, not fatal); vcl-status reading the agent through the
pod proxy."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from injected_pods import injected_pod
from kube_double import KubeDouble
from waiting import eventually

from injector.agent.controller import Agent, AgentOptions
from injector.agent.status import agent_status
from injector.cli.status import collect
from injector.kube.cluster import Cluster
from injector.kube.pods import PodWatch, PolicyWatch
from injector.kube.report import KubeReporter
from vppctl_py import Vpp
from vppctl_py.testing import FakeVpp


@pytest.fixture
def kube() -> Iterator[KubeDouble]:
    with KubeDouble() as double:
        double.namespaces["demo"] = {"vcl-injection": "enabled"}
        yield double


class Cache:
    def __init__(self) -> None:
        self.pods: dict[str, dict[str, Any]] = {}
        self.syncs = 0

    def sync(self, pods: dict[str, dict[str, Any]]) -> None:
        self.pods = dict(pods)
        self.syncs += 1

    def event(self, kind: str, pod: dict[str, Any]) -> None:
        if kind == "DELETED":
            self.pods.pop(pod["metadata"]["uid"], None)
        else:
            self.pods[pod["metadata"]["uid"]] = pod


@pytest.fixture
def watching(kube: KubeDouble) -> Iterator[tuple[PodWatch, Cache]]:
    cache = Cache()
    watch = PodWatch(
        kube.api_client(), "node-a", on_sync=cache.sync, on_event=cache.event, watch_timeout=5
    )
    stop = threading.Event()
    thread = threading.Thread(target=watch.run, args=(stop,), daemon=True)
    thread.start()
    yield watch, cache
    stop.set()
    kube.drop_watches()
    thread.join(timeout=10)


def names(cache: Cache) -> set[str]:
    return {p["metadata"]["name"] for p in cache.pods.values()}


def test_watch_sees_only_its_node_and_survives_410_and_drops(
    kube: KubeDouble, watching: tuple[PodWatch, Cache]
) -> None:
    watch, cache = watching
    kube.create_pod(injected_pod("a"))
    kube.create_pod(injected_pod("elsewhere", node="node-b"))
    eventually("pod a", lambda: names(cache) == {"a"})
    kube.drop_watches()  # like an apiserver restart
    kube.create_pod(injected_pod("b"))  # happens while no watch is open
    eventually("pod b after the drop", lambda: names(cache) == {"a", "b"})
    kube.compact()
    kube.drop_watches(clean=True)  # the rewatch from our version now gets 410 Expired
    kube.delete_pod("demo", "a")
    eventually("a gone after the 410", lambda: names(cache) == {"b"})
    assert watch.stats.expired >= 1 and watch.stats.lists >= 2


@pytest.fixture
def running_agent(kube: KubeDouble, fake: FakeVpp, root: Path) -> Iterator[Agent]:
    api = kube.api_client()
    agent = Agent(
        AgentOptions(node="node-a", root=str(root), resync_period=0.2),
        connect=lambda: Vpp.connect(fake.api_socket, timeout=5.0),
        reporter=KubeReporter(api, "node-a"),
    )
    watch = PodWatch(
        api, "node-a", on_sync=agent.sync_pods, on_event=agent.pod_event, watch_timeout=5
    )
    stop = threading.Event()
    threads = [
        threading.Thread(target=watch.run, args=(stop,), daemon=True),
        threading.Thread(target=agent.run, args=(stop,), daemon=True),
    ]
    for t in threads:
        t.start()
    yield agent
    stop.set()
    kube.drop_watches()
    agent.wake()
    for t in threads:
        t.join(timeout=10)


def vcl_ids(fake: FakeVpp) -> set[str]:
    return {n for n in fake.namespace_ids() if n.startswith("vcl-")}


def condition(pod: dict[str, Any]) -> str | None:
    for cond in pod.get("status", {}).get("conditions", []):
        if cond.get("type") == "vcl.io/dataplane-ready":
            return str(cond["status"])
    return None


def test_agent_registers_reports_and_cleans_up(
    kube: KubeDouble, fake: FakeVpp, running_agent: Agent
) -> None:
    pod = kube.create_pod(injected_pod("web"))
    uid = pod["metadata"]["uid"]
    eventually("namespace in VPP", lambda: vcl_ids(fake) == {f"vcl-{uid}"})
    stored = eventually(
        "annotation",
        lambda: (
            "vcl.io/registered" in kube.pods[("demo", "web")]["metadata"]["annotations"]
            and kube.pods[("demo", "web")]
        ),
    )
    assert (
        json.loads(stored["metadata"]["annotations"]["vcl.io/registered"])["namespaceId"]
        == f"vcl-{uid}"
    )
    eventually("readiness condition", lambda: condition(kube.pods[("demo", "web")]) == "True")
    assert any(
        e["reason"] == "Registered" and e["involvedObject"]["uid"] == uid for e in kube.events
    )
    assert kube.nodes["node-a"]["metadata"]["labels"]["vcl.io/vpp"] == "ready"
    kube.delete_pod("demo", "web")
    eventually("namespace removed", lambda: not vcl_ids(fake))


def test_vpp_restart_evicts_registered_pods(
    kube: KubeDouble, fake: FakeVpp, running_agent: Agent
) -> None:
    kube.create_pod(injected_pod("a"))
    b = kube.create_pod(injected_pod("b"))
    kube.eviction_blocked = {("demo", "b")}  # a PodDisruptionBudget forbids evicting b
    eventually(
        "both reported", lambda: all(condition(kube.pods[("demo", n)]) == "True" for n in "ab")
    )
    fake.restart()
    eventually("a evicted", lambda: ("demo", "a") in kube.evictions)
    assert ("demo", "b") not in kube.evictions
    eventually(
        "both told why", lambda: sum(e["reason"] == "VppRestarted" for e in kube.events) == 2
    )
    eventually("only b's namespace left", lambda: vcl_ids(fake) == {f"vcl-{b['metadata']['uid']}"})
    eventually(
        "refusal counted",
        lambda: running_agent.metrics.evictions.labels("refused")._value.get() == 1,
    )


def test_vcl_status_reads_the_agent_through_the_pod_proxy(
    kube: KubeDouble, fake: FakeVpp, running_agent: Agent
) -> None:
    pod = kube.create_pod(injected_pod("web"))
    kube.create_pod(
        {
            "metadata": {"name": "missed", "namespace": "demo"},
            "spec": {"nodeName": "node-a", "containers": [{"name": "app"}]},
        }
    )
    kube.create_pod(
        {
            "metadata": {
                "name": "vcl-agent-x",
                "namespace": "vcl-system",
                "labels": {"app.kubernetes.io/name": "vcl-agent"},
            },
            "spec": {"nodeName": "node-a", "containers": [{"name": "agent"}]},
        }
    )
    kube.proxies[("vcl-system", "vcl-agent-x", 9464)] = lambda path: (
        200,
        orjson.dumps(agent_status(running_agent)),
    )
    eventually(
        "registered",
        lambda: (
            running_agent.states.get(pod["metadata"]["uid"])
            and running_agent.states[pod["metadata"]["uid"]].state == "registered"
        ),
    )
    rows = {r.name: r for r in collect(Cluster(kube.api_client()), None, "demo", None)}
    assert rows["web"].healthy and rows["web"].registered == f"vcl-{pod['metadata']['uid']}"
    assert not rows["missed"].healthy and rows["missed"].reason == "opted in but not injected"


def test_network_policies_reach_the_agent_list_then_watch(
    kube: KubeDouble, fake: FakeVpp, root: Path
) -> None:
    """Mode local's endpoint table needs every NetworkPolicy: listed first (until then the
    agent knows none, and publishes empty tables), then followed through the watch, across
    a dropped watch."""
    agent = Agent(AgentOptions(node="node-a", root=str(root)),
                  connect=lambda: Vpp.connect(fake.api_socket, timeout=5.0))  # fmt: skip
    kube.create_policy({"metadata": {"name": "db-in", "namespace": "demo"},
                        "spec": {"podSelector": {"matchLabels": {"app": "db"}}}})  # fmt: skip
    watch = PolicyWatch(kube.api_client(), on_sync=agent.sync_policies,
                        on_event=agent.policy_event, watch_timeout=5)  # fmt: skip
    stop = threading.Event()
    thread = threading.Thread(target=watch.run, args=(stop,), daemon=True)
    assert agent.policies is None
    thread.start()
    try:

        def names() -> set[str]:
            return {p["metadata"]["name"] for p in (agent.policies or {}).values()}

        eventually("the list", lambda: names() == {"db-in"})
        kube.create_policy({"metadata": {"name": "web-out", "namespace": "demo"},
                            "spec": {"podSelector": {}, "policyTypes": ["Egress"]}})  # fmt: skip
        eventually("an added policy", lambda: names() == {"db-in", "web-out"})
        kube.drop_watches()
        kube.delete_policy("demo", "db-in")
        eventually("a deletion across a dropped watch", lambda: names() == {"web-out"})
        kube.create_pod(injected_pod("not-a-policy"))  # the pods' events are not policies
        time.sleep(0.3)
        assert names() == {"web-out"}
    finally:
        stop.set()
        kube.drop_watches()
        thread.join(timeout=10)
