"""vcl-status's view: one row per pod from the pod, its namespace labels and the node
agent's report. Pure, so every case is a table test."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from injector.core import InjectorConfig, decide
from injector.core import constants as c

_RS_HASH = re.compile(r"^(?P<deploy>.+)-[a-z0-9]{6,10}$")


@dataclass
class PodRow:
    namespace: str
    name: str
    node: str
    injected: bool
    reason: str
    dataplane: str = ""
    containers: list[str] = field(default_factory=list)
    registered: str = ""  # namespace id, or "" when not (yet)
    state: str = ""
    apps: int = 0
    workers: int = 0
    sessions: int = 0
    eventfd: bool | None = None
    kernel_rules: str = ""
    # mode local: the pod's listeners VPP serves (address:port/proto), the others with
    # why not, its connections through VPP, and the node table's generation
    vpp_serves: list[str] = field(default_factory=list)
    not_through_vpp: list[str] = field(default_factory=list)
    vpp_connections: int = 0
    table_generation: int | None = None
    # whom the pod connected to through VPP, and its open connections per stack as its
    # processes count them ({"vpp": n, "kernel": n, "loopback": n}; None: none counted yet)
    vpp_peers: list[str] = field(default_factory=list)
    connections: dict[str, int] | None = None
    warnings: list[str] = field(default_factory=list)
    healthy: bool = True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def restart_hint(pod: Mapping[str, Any]) -> str:
    """The command that recreates the pod through its controller."""
    meta = pod.get("metadata") or {}
    ns = meta.get("namespace", "default")
    for owner in meta.get("ownerReferences") or []:
        kind, name = owner.get("kind"), str(owner.get("name", ""))
        if kind == "ReplicaSet" and (match := _RS_HASH.match(name)):
            return f"kubectl -n {ns} rollout restart deployment/{match['deploy']}"
        if kind in ("StatefulSet", "DaemonSet"):
            return f"kubectl -n {ns} rollout restart {kind.lower()}/{name}"
    return f"kubectl -n {ns} delete pod {meta.get('name')} (and create it again)"


def pod_row(
    pod: Mapping[str, Any],
    namespace_labels: Mapping[str, str],
    agent: Mapping[str, Any] | None,
    config: InjectorConfig,
    *,
    agent_error: str | None = None,
) -> PodRow:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    annotations = meta.get("annotations") or {}
    row = PodRow(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        node=str(spec.get("nodeName") or ""),
        injected=c.ANNOTATION_STATUS in annotations,
        reason="",
    )
    if not row.injected:
        decision = decide(pod, namespace_labels, config)
        if decision.inject:
            row.healthy = False
            row.reason = "opted in but not injected"
            row.warnings.append(
                "the webhook did not inject it (it was unavailable or failed when the pod "
                f"was created): {restart_hint(pod)}"
            )
        else:
            row.reason = decision.reason
        return row
    try:
        status = json.loads(annotations[c.ANNOTATION_STATUS])
    except ValueError:
        status = {}
    settings = status.get("settings", {})
    row.reason = str(status.get("selection", "injected"))
    row.dataplane = str(status.get("dataplane", "node"))
    row.containers = list(status.get("containers", []))
    row.eventfd = settings.get("eventfd")
    rules = [*settings.get("kernelCidrs", []), *(f":{p}" for p in settings.get("kernelPorts", []))]
    row.kernel_rules = ",".join(str(r) for r in rules) or "loopback only"
    row.warnings.extend(status.get("warnings", []))
    if row.dataplane == "pod":
        row.state = "own VPP"
        return row
    _merge_agent(row, pod, agent, agent_error)
    return row


def _merge_agent(
    row: PodRow, pod: Mapping[str, Any], agent: Mapping[str, Any] | None, agent_error: str | None
) -> None:
    uid = (pod.get("metadata") or {}).get("uid")
    entry = None
    if agent is not None:
        entry = next((p for p in agent.get("pods", []) if p.get("uid") == uid), None)
        if not (agent.get("vpp") or {}).get("up"):
            row.warnings.append(f"VPP on node {row.node} is down")
    if entry is None:
        row.healthy = False
        row.state = "unknown"
        row.warnings.append(
            agent_error or f"the agent on node {row.node or '?'} does not know the pod"
        )
        return
    row.state = str(entry.get("state", ""))
    row.registered = str(entry.get("namespaceId") or "") if row.state == "registered" else ""
    row.apps = len(entry.get("apps", []))
    row.workers = int(entry.get("workers", 0))
    row.sessions = int(entry.get("sessions", 0))
    row.vpp_peers = [str(p) for p in entry.get("vppPeers", [])]
    conns = entry.get("connections")
    if isinstance(conns, Mapping) and isinstance(conns.get("open"), Mapping):
        row.connections = {str(k): int(v) for k, v in conns["open"].items()}
    endpoints = entry.get("endpoints")
    if isinstance(endpoints, Mapping):
        row.vpp_serves = [str(e) for e in endpoints.get("served", [])]
        row.not_through_vpp = [
            f"{n.get('listener')}: {n.get('why')}" for n in endpoints.get("notServed", [])
        ]
        row.vpp_connections = int(endpoints.get("vppConnections", 0))
        row.table_generation = endpoints.get("generation")
        if not endpoints.get("policiesKnown", True):
            row.warnings.append(
                "NetworkPolicies not read yet: this pod's traffic stays on the kernel"
            )
        elif endpoints.get("egressRestrictedBy"):
            row.warnings.append(
                "egress NetworkPolicy "
                + ", ".join(endpoints["egressRestrictedBy"])
                + ": this pod's connections stay on the kernel, where the CNI enforces it"
            )
    for warning in [*entry.get("problems", []), *entry.get("warnings", [])]:
        if warning not in row.warnings:
            row.warnings.append(warning)
    if entry.get("problems"):
        # A selected container not on VPP (preload did not take, LDP failed to load).
        row.healthy = False
    if row.state != "registered":
        row.healthy = False
        if entry.get("message"):
            row.warnings.append(str(entry["message"]))
