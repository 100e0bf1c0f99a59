"""vcl-status's rows (pure): injected or why not, opted in but never injected (with the
restart command), registration and attachment from the agent's report, warnings, and
what counts as unhealthy (the exit code)."""

from __future__ import annotations

from typing import Any

import pytest
from injected_pods import injected_pod

from injector.cli.status_view import pod_row, restart_hint
from injector.core import InjectorConfig

CONFIG = InjectorConfig()
ENABLED = {"vcl-injection": "enabled"}


def plain_pod(**meta: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "demo", "uid": "u-1", **meta},
        "spec": {"nodeName": "node-a", "containers": [{"name": "app"}]},
        "status": {"phase": "Running"},
    }


def agent_report(pod: dict[str, Any], **entry: Any) -> dict[str, Any]:
    base = {
        "uid": pod["metadata"]["uid"],
        "state": "registered",
        "namespaceId": "vcl-x",
        "apps": [{"name": "envoy", "workers": 3}],
        "workers": 3,
        "sessions": 5,
        "warnings": [],
    }
    return {
        "node": "node-a",
        "vpp": {"up": True, "version": "26.06-release"},
        "pods": [{**base, **entry}],
    }


def test_not_opted_in_is_healthy_with_the_reason() -> None:
    row = pod_row(plain_pod(), {}, None, CONFIG)
    assert (row.injected, row.healthy) == (False, True)
    assert "not labelled vcl-injection=enabled" in row.reason


def test_opted_in_but_not_injected_is_unhealthy_with_the_fix() -> None:
    owner = [{"kind": "ReplicaSet", "name": "web-6cc7d896f9", "apiVersion": "apps/v1", "uid": "r"}]
    row = pod_row(plain_pod(ownerReferences=owner), ENABLED, None, CONFIG)
    assert (row.injected, row.healthy) == (False, False)
    assert row.reason == "opted in but not injected"
    assert "kubectl -n demo rollout restart deployment/web" in row.warnings[0]


@pytest.mark.parametrize(
    ("owners", "hint"),
    [
        ([{"kind": "StatefulSet", "name": "db"}], "rollout restart statefulset/db"),
        ([{"kind": "DaemonSet", "name": "ds"}], "rollout restart daemonset/ds"),
        ([], "delete pod p"),
    ],
)
def test_restart_hints(owners: list[dict[str, str]], hint: str) -> None:
    assert hint in restart_hint(plain_pod(ownerReferences=owners))


def test_registered_pod_with_apps_and_workers() -> None:
    pod = injected_pod("web", annotations={"vcl.io/kernel-cidrs": "10.96.0.0/12"})
    row = pod_row(pod, ENABLED, agent_report(pod), CONFIG)
    assert row.healthy and row.registered == "vcl-x"
    assert (row.apps, row.workers, row.sessions, row.eventfd) == (1, 3, 5, True)
    assert row.kernel_rules == "10.96.0.0/12,:53"


@pytest.mark.parametrize(
    ("report", "words"),
    [
        ({"state": "error", "message": "capacity: VPP's main heap has no room"}, "main heap"),
        ({"state": "vpp-down", "message": "VPP on node node-a is down"}, "is down"),
        ({"state": "pending", "message": ""}, None),
    ],
)
def test_unregistered_states_are_unhealthy(report: dict[str, Any], words: str | None) -> None:
    pod = injected_pod("web")
    row = pod_row(pod, ENABLED, agent_report(pod, **report), CONFIG)
    assert not row.healthy and row.registered == ""
    if words:
        assert any(words in w for w in row.warnings)


def test_a_container_not_on_vpp_makes_the_pod_unhealthy() -> None:
    """Registered and Ready, but its container's preload did not take: vcl-status must not
    say ok (the app silently runs on the kernel)."""
    pod = injected_pod("web")
    problem = "container app: preload did not take (no process loaded the interposer in 60s"
    row = pod_row(pod, ENABLED, agent_report(pod, problems=[problem], apps=[]), CONFIG)
    assert row.registered == "vcl-x" and not row.healthy
    assert row.warnings[0] == problem


def test_agent_unreachable_is_unhealthy_and_says_why() -> None:
    pod = injected_pod("web")
    row = pod_row(pod, ENABLED, None, CONFIG, agent_error="no vcl-agent pod on node node-a")
    assert not row.healthy and row.state == "unknown"
    assert "no vcl-agent pod on node node-a" in row.warnings


def test_vpp_down_and_agent_warnings_are_shown() -> None:
    pod = injected_pod("web")
    report = agent_report(
        pod, warnings=["eventfd is off: this pod's VCL apps poll at 100% CPU when idle"]
    )
    report["vpp"] = {"up": False}
    row = pod_row(pod, ENABLED, report, CONFIG)
    assert any("VPP on node" in w for w in row.warnings)
    assert any("100% CPU" in w for w in row.warnings)


def test_pod_dataplane_needs_no_agent() -> None:
    pod = injected_pod("own", annotations={"vcl.io/dataplane": "pod"})
    row = pod_row(pod, ENABLED, None, CONFIG)
    assert row.healthy and row.dataplane == "pod" and row.state == "own VPP"


def test_mode_local_shows_what_vpp_serves_and_why_not_the_rest() -> None:
    pod = injected_pod("web")
    endpoints = {
        "generation": 4, "policiesKnown": True, "vppConnections": 2,
        "served": ["10.244.0.5:80/tcp"],
        "notServed": [{"listener": "0.0.0.0:53/udp", "why": "UDP stays on the kernel"}],
        "egressRestrictedBy": [],
    }  # fmt: skip
    row = pod_row(pod, ENABLED, agent_report(pod, endpoints=endpoints), CONFIG)
    assert row.healthy and row.table_generation == 4 and row.vpp_connections == 2
    assert row.vpp_serves == ["10.244.0.5:80/tcp"]
    assert row.not_through_vpp == ["0.0.0.0:53/udp: UDP stays on the kernel"]
    guarded = {**endpoints, "served": [], "egressRestrictedBy": ["web-out"]}
    row = pod_row(pod, ENABLED, agent_report(pod, endpoints=guarded), CONFIG)
    assert any("egress NetworkPolicy web-out" in w for w in row.warnings)
    unknown = {**endpoints, "policiesKnown": False}
    row = pod_row(pod, ENABLED, agent_report(pod, endpoints=unknown), CONFIG)
    assert any("NetworkPolicies not read yet" in w for w in row.warnings)


def test_connections_per_stack_and_vpp_peers_are_shown() -> None:
    from rich.console import Console

    from injector.cli.status import render_table

    pod = injected_pod("web")
    counted = {"open": {"vpp": 3, "kernel": 1, "loopback": 2},
               "total": {"vpp": 9, "kernel": 1, "loopback": 2}, "processes": 2}  # fmt: skip
    report = agent_report(pod, vppPeers=["10.244.0.9"], connections=counted)
    row = pod_row(pod, ENABLED, report, CONFIG)
    assert row.connections == {"vpp": 3, "kernel": 1, "loopback": 2}
    assert row.vpp_peers == ["10.244.0.9"]
    quiet = pod_row(pod, ENABLED, agent_report(pod, connections=None), CONFIG)
    assert quiet.connections is None  # no process connected yet: VPP's count only
    console = Console(width=400, record=True)
    render_table([row, quiet], console)
    text = console.export_text()
    assert "vpp 3 / kernel 1 / lo 2 (to 10.244.0.9 via VPP)" in text
    assert "5 VPP sessions" in text
