"""A Reporter (injector.agent.controller) that records what the agent would tell
Kubernetes, for controller tests; the HTTP path to Kubernetes is tested with kube_double."""

from __future__ import annotations

from typing import Any

from injector.kube.report import PodRef


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.evict_ok = True

    def event(self, pod: PodRef, reason: str, message: str, *, warning: bool = False) -> bool:
        self.calls.append(("event", pod.name, reason, warning, message))
        return True

    def registered(self, pod: PodRef, ns_id: str) -> bool:
        self.calls.append(("registered", pod.name, ns_id))
        return True

    def condition(self, pod: PodRef, ready: bool, reason: str, message: str) -> bool:
        self.calls.append(("condition", pod.name, ready, reason))
        return True

    def node_label(self, ready: bool) -> bool:
        self.calls.append(("node", ready))
        return True

    def node_event(self, reason: str, message: str, *, warning: bool = False) -> bool:
        self.calls.append(("node_event", reason, warning, message))
        return True

    def evict(self, pod: PodRef) -> bool:
        self.calls.append(("evict", pod.name))
        return self.evict_ok

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] == kind]
