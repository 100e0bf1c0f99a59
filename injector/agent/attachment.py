"""Per selected container: did our code get into its processes, and did they reach VPP?

From the interposer's reports (injector.agent.reports), the pod's container statuses and
VPP's apps (LDP names each "<container>-<pod uid>-ldp-<pid>"). Pure, so every case is a table test.
A problem here makes the pod unhealthy in vcl-status: the app is running on the kernel
while everything else says "injected, registered, ready".
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from injector.agent.reports import ProcessReport
from vppctl_py import App
from vppctl_py.cli_text import APP_NAME_WIDTH

# A process reports "started" from our constructor, before main(): a container running this
# long without one never loaded the interposer.
REPORT_GRACE_SECONDS = 15.0


@dataclass(frozen=True)
class ContainerAttachment:
    name: str
    running: bool
    processes: int  # that reported
    vpp_apps: int  # VPP apps named after the container
    ldp: str  # loaded | failed | vpp-unreachable | not loaded yet | -
    problem: str | None  # what makes the pod unhealthy, said for a person

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "running": self.running, "processes": self.processes,
                "vppApps": self.vpp_apps, "ldp": self.ldp, "problem": self.problem}  # fmt: skip


def started_at(status: Mapping[str, Any]) -> float | None:
    """A container status's running.startedAt as unix time, if running."""
    running = ((status.get("state") or {}).get("running") or {}).get("startedAt")
    if not isinstance(running, str):
        return None
    try:
        return float(calendar.timegm(time.strptime(running, "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return None


def container_statuses(pod: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    status = pod.get("status") or {}
    every = [*(status.get("containerStatuses") or []), *(status.get("initContainerStatuses") or [])]
    return {str(s.get("name")): s for s in every}


def is_containers_app(app: str, container: str, uid: str) -> bool:
    """Whether VPP's app `app` is a process of this pod's container: LDP names it
    "<container>-<pod uid>-ldp-<pid>" ("<container>-ldp-<pid>" for older injections), and
    VPP's `show app` cuts names at 20 characters."""
    for prefix in (f"{container}-{uid}-ldp-", f"{container}-ldp-"):
        if app.startswith(prefix) or (len(app) >= APP_NAME_WIDTH and prefix.startswith(app)):
            return True
    return False


def attachment(
    pod: Mapping[str, Any],
    selected: Iterable[str],
    reports: list[ProcessReport],
    apps: list[App],
    *,
    listening_since: float | None,
    now: float,
) -> list[ContainerAttachment]:
    """One entry per selected container. listening_since: when the agent's report socket
    for this pod was bound (reports from containers started before it were not heard)."""
    statuses = container_statuses(pod)
    uid = (pod.get("metadata") or {}).get("uid", "")
    result = []
    for name in selected:
        mine = [r for r in reports if r.container == name]
        vpp_apps = sum(1 for a in apps if is_containers_app(a.name, name, uid))
        since = started_at(statuses.get(name, {}))
        failed = [r for r in mine if r.state in ("ldp-failed", "disabled")]
        handoff = [r for r in mine if r.state == "thread-handoff"]
        half_close = [r for r in mine if r.state == "half-close"]
        news = handoff or half_close  # what a loaded process did that VPP cannot serve
        unreachable = [r for r in mine if r.state == "vpp-unreachable"]
        ldp = (
            "failed" if failed else
            "loaded" if vpp_apps or news or any(r.state == "ldp-loaded" for r in mine) else
            "vpp-unreachable" if unreachable else
            "not loaded yet" if mine else "-"
        )  # fmt: skip
        problem = None
        if failed:
            r = failed[-1]
            problem = (
                f"container {name}: {r.comm} (pid {r.pid}) cannot use VPP: "
                + ("LDP failed to load: " if r.state == "ldp-failed" else "")
                + r.detail
            )
        elif news:
            r = news[-1]
            problem = f"container {name}: {r.comm} (pid {r.pid}): {r.detail}"
        elif (
            not mine
            and since is not None
            and listening_since is not None
            and since >= listening_since
            and now - since > REPORT_GRACE_SECONDS
        ):
            problem = (
                f"container {name}: preload did not take (no process loaded the interposer "
                f"in {int(now - since)}s: a static binary or a non-glibc runtime, which "
                "LD_PRELOAD cannot enter); it runs on the kernel"
            )
        pids = len({r.pid for r in mine})
        result.append(ContainerAttachment(name, since is not None, pids, vpp_apps, ldp, problem))
    return result
