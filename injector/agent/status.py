"""The agent's /status: per pod on this node, what is registered and attached in VPP."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from injector.agent.attachment import attachment
from injector.agent.controller import Agent
from injector.core import constants as c
from vppctl_py import App, Session, VppClient, VppError


@dataclass(frozen=True)
class VppView:
    """One snapshot of VPP for a whole /status answer (a few CLI calls, not per pod)."""

    summary: dict[str, Any]
    apps: list[App] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)


def vpp_view(vpp: VppClient | None, error: str | None = None) -> VppView:
    if vpp is None:
        return VppView({"up": False, "error": error or "not connected"})
    try:
        version = vpp.version().version
        heap = vpp.memory()
        apps, sessions = vpp.apps(), vpp.sessions()
    except VppError as exc:
        return VppView({"up": False, "error": str(exc)})
    summary = {
        "up": True,
        "version": version,
        "heap": {"size": heap.size, "used": heap.used, "available": heap.available},
    }
    return VppView(summary, apps, sessions)


def pod_status(agent: Agent, pod: dict[str, Any], view: VppView, now: float) -> dict[str, Any]:
    meta = pod.get("metadata") or {}
    uid = meta["uid"]
    reg = agent.registrations.get(uid)
    state = agent.states.get(uid)
    injected = json.loads((meta.get("annotations") or {}).get(c.ANNOTATION_STATUS, "{}") or "{}")
    settings = injected.get("settings", {})
    out: dict[str, Any] = {
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "uid": uid,
        "phase": (pod.get("status") or {}).get("phase"),
        "dataplane": injected.get("dataplane", "node"),
        "containers": injected.get("containers", []),
        "state": state.state if state else "pending",
        "message": state.message if state else "",
        "namespaceId": reg.ns_id if reg else None,
        "eventfd": settings.get("eventfd"),
        "kernelRules": {k: settings.get(k) for k in ("kernelCidrs", "kernelPorts", "kernelListen")},
        "apps": [],
        "workers": 0,
        "sessions": 0,
        "vppPeers": [],
        "connections": None,
        "attachment": [],
        "problems": [],
        "warnings": list(injected.get("warnings", [])),
    }
    if reg is None:
        return out
    mine = [a for a in view.apps if a.ns_id == reg.ns_id]
    out["apps"] = [{"name": a.name, "workers": len(a.workers)} for a in mine]
    out["workers"] = sum(len(a.workers) for a in mine)
    vpp_sessions = [s for s in view.sessions if s.ns_id == reg.ns_id]
    out["sessions"] = len(vpp_sessions)
    # Whom the pod talks to through VPP (its connected sessions' remote addresses), and
    # its live connections per stack as its processes count them (reports.ConnPage).
    out["vppPeers"] = sorted(
        {peer for s in vpp_sessions if s.state != "LISTEN" and (peer := _host(s.remote))}
    )
    out["connections"] = agent.reports.connections(uid)
    warnings: list[str] = out["warnings"]
    if mine and settings.get("eventfd") is False:
        warnings.append("eventfd is off: this pod's VCL apps poll at 100% CPU when idle")
    attached = attachment(
        pod,
        out["containers"],
        agent.reports.of(uid),
        mine,
        listening_since=agent.reports.bound_at.get(uid),
        now=now,
    )
    out["attachment"] = [a.as_dict() for a in attached]
    table = agent.endpoints
    if table is not None:  # mode local: what VPP serves of this pod, and why not the rest
        mine_table = table.plan.pods.get(uid)
        out["endpoints"] = {
            "generation": table.generation,
            "policiesKnown": table.policies_known,
            "served": [str(e) for e in mine_table.served] if mine_table else [],
            "notServed": [{"listener": lst, "why": why}
                          for lst, why in (mine_table.not_served if mine_table else ())],
            "egressRestrictedBy": list(mine_table.egress_restricted_by) if mine_table else [],
        }  # fmt: skip
        out["endpoints"]["vppConnections"] = sum(1 for s in vpp_sessions if s.state != "LISTEN")
    out["problems"] = [a.problem for a in attached if a.problem]
    version = view.summary.get("version")
    if version and reg.runtime_version and not str(version).startswith(reg.runtime_version):
        warnings.append(
            f"VCL library {reg.runtime_version} in the pod, VPP {version} on the node: "
            "version skew (restart the pod after upgrading)"
        )
    if state and state.state == "error" and state.message.startswith("capacity"):
        warnings.append("not registered: VPP's main heap is full (see vcl-status docs)")
    return out


def _host(address: str) -> str:
    """ "10.0.0.1:80" / "fd00::1:80" (VPP's CLI form) -> the address, "" for a wildcard."""
    host = address.rpartition(":")[0].strip("[]")
    return "" if host in ("", "0.0.0.0", "::") else host


def agent_status(agent: Agent, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    view = vpp_view(agent.vpp, agent.vpp_error)
    entries = [
        pod_status(agent, pod, view, now)
        for pod in agent.pod_snapshot()
        if c.ANNOTATION_STATUS in ((pod.get("metadata") or {}).get("annotations") or {})
    ]
    per_pod: dict[tuple[str, str], tuple[int, int]] = defaultdict(lambda: (0, 0))
    for entry in entries:
        per_pod[(entry["namespace"], entry["name"])] = (entry["workers"], entry["sessions"])
    for (ns, name), (workers, count) in per_pod.items():
        agent.metrics.app_workers.labels(ns, name).set(workers)
        agent.metrics.sessions.labels(ns, name).set(count)
    out: dict[str, Any] = {"node": agent.options.node, "vpp": view.summary, "pods": entries}
    if agent.endpoints is not None:
        out["endpointTable"] = {
            "generation": agent.endpoints.generation,
            "size": len(agent.endpoints.plan.endpoints),
            "policiesKnown": agent.endpoints.policies_known,
        }
    return out
