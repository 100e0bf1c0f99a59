"""The agent's loop: keep the pod cache from the watch, reconcile VPP and the host with
it (observe → plan → apply), and report the outcome to Kubernetes."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from injector.agent.apply import ActionResult, Applier, Binding, CapacityGuard
from injector.agent.endpoints import EndpointTable, Listener
from injector.agent.hostfiles import HostFiles
from injector.agent.metrics import AgentMetrics
from injector.agent.network import CalicoVppNetwork, LocalPodNetwork
from injector.agent.plan import AddNamespace, WriteConf, plan
from injector.agent.registration import CALICO_VPP, LOCAL, PodRegistration, desired
from injector.agent.reports import ProcessReports
from injector.kube.report import PodRef
from vppctl_py import (
    VppApiDefinitionsError,
    VppClient,
    VppDisconnected,
    VppError,
    VppUnsupportedRelease,
)

log = logging.getLogger("vcl_agent")
MIB = 1024 * 1024
# VPP prints its start time to the microsecond; a restart takes far longer than this.
RESTART_TOLERANCE = 0.001


class Reporter(Protocol):
    def event(self, pod: PodRef, reason: str, message: str, *, warning: bool = False) -> bool: ...
    def registered(self, pod: PodRef, ns_id: str) -> bool: ...
    def condition(self, pod: PodRef, ready: bool, reason: str, message: str) -> bool: ...
    def node_label(self, ready: bool) -> bool: ...
    def node_event(self, reason: str, message: str, *, warning: bool = False) -> bool: ...
    def evict(self, pod: PodRef) -> bool: ...


@dataclass(frozen=True)
class AgentOptions:
    node: str
    root: str
    resync_period: float = 60.0
    evict_on_vpp_restart: bool = True
    namespace_cost: int = 7 * MIB
    # local mode: bind every pod's namespace to this VPP interface (by name) and/or FIBs.
    interface: str | None = None
    ip4_fib_id: int | None = None
    ip6_fib_id: int | None = None
    network: str = LOCAL  # or calico-vpp (then Agent needs pod_network)
    # local mode: how often VPP's listeners are read for the node's endpoint table
    endpoint_period: float = 1.0
    # local mode without `interface`: a loopback per pod with its IPs in this VRF, the
    # pod's namespace bound to it (the agent's command line turns it on by default)
    pod_interfaces: bool = False
    node_vrf: int = 1985


class BindingError(RuntimeError):
    """The configured interface is not in VPP; no namespace can be bound as asked."""


@dataclass
class PodState:
    """What was last reported for a pod, so each change is reported once."""

    state: str = ""  # registered | error | refused | waiting | vpp-down
    message: str = ""
    annotated: bool = False


def vpp_problem(exc: Exception) -> tuple[str, str]:
    """(Event reason, message) for why VPP cannot be used: an unsupported release or
    unusable API definitions need a person (upgrade one side); the rest may pass."""
    if isinstance(exc, VppUnsupportedRelease):
        return "VppUnsupportedRelease", f"VPP cannot be used: {exc}"
    if isinstance(exc, VppApiDefinitionsError):
        return "VppApiDefinitions", f"VPP cannot be used: {exc}"
    return "VppUnreachable", f"VPP unreachable: {exc}"


def pod_ref(pod: dict[str, Any]) -> PodRef:
    meta = pod.get("metadata") or {}
    return PodRef(str(meta.get("namespace", "")), str(meta.get("name", "")), str(meta["uid"]))


class Agent:
    def __init__(
        self,
        options: AgentOptions,
        *,
        connect: Callable[[], VppClient],
        reporter: Reporter | None = None,
        metrics: AgentMetrics | None = None,
        pod_network: CalicoVppNetwork | None = None,
    ) -> None:
        if options.network == CALICO_VPP and pod_network is None:
            raise ValueError("calico-vpp mode needs pod_network (the CRI netns locator)")
        self.options = options
        self.pod_network = pod_network if options.network == CALICO_VPP else None
        self.local_network = (
            LocalPodNetwork(options.node_vrf)
            if options.network == LOCAL and options.pod_interfaces and options.interface is None
            else None
        )
        self.connect = connect
        self.reporter = reporter
        self.metrics = metrics or AgentMetrics()
        self.host = HostFiles(options.root)
        self.capacity = CapacityGuard(estimate=options.namespace_cost)
        self.reports = ProcessReports()
        self.pods: dict[str, dict[str, Any]] = {}
        self.states: dict[str, PodState] = {}
        self.registrations: dict[str, PodRegistration] = {}
        self.vpp: VppClient | None = None
        self.binding = Binding()
        self.vpp_started: float | None = None  # when the VPP we talk to started
        self.vpp_down_since: float | None = None
        self.vpp_error: str | None = "not connected yet"  # why VPP is not usable, if so
        self.last_results: dict[str, ActionResult] = {}
        # local mode: the node's endpoint table, from VPP's listeners and the policies
        self.endpoints = EndpointTable(Path(options.root)) if self.pod_network is None else None
        self.policies: dict[str, dict[str, Any]] | None = None  # by uid; None: not listed yet
        self.synced = threading.Event()  # the first pod list arrived
        self._wake = threading.Event()
        self._lock = threading.RLock()

    # --- inputs from the pod watch ------------------------------------------------------

    def sync_pods(self, pods: dict[str, dict[str, Any]]) -> None:
        with self._lock:
            self.pods = dict(pods)
        self.synced.set()
        self._wake.set()

    def pod_event(self, kind: str, pod: dict[str, Any]) -> None:
        uid = (pod.get("metadata") or {}).get("uid")
        if not uid:
            return
        with self._lock:
            if kind == "DELETED":
                self.pods.pop(uid, None)
            else:
                self.pods[uid] = pod
        self._wake.set()

    def sync_policies(self, policies: dict[str, dict[str, Any]]) -> None:
        with self._lock:
            self.policies = dict(policies)

    def policy_event(self, kind: str, policy: dict[str, Any]) -> None:
        uid = (policy.get("metadata") or {}).get("uid")
        if not uid:
            return
        with self._lock:
            if self.policies is None:
                return  # the list comes first
            if kind == "DELETED":
                self.policies.pop(uid, None)
            else:
                self.policies[uid] = policy

    # --- the loop -----------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Full passes on pod events and every resync period; in between (mode local) the
        endpoint table follows VPP's listeners every endpoint_period."""
        retry = 1.0
        next_full = 0.0
        while not stop.is_set():
            if self._wake.is_set() or time.monotonic() >= next_full:
                self._wake.clear()
                ok = self.reconcile()
                retry = 1.0 if ok else min(retry * 2, 30.0)
                next_full = time.monotonic() + (self.options.resync_period if ok else retry)
            elif self.endpoints is not None and self.vpp is not None:
                self.refresh_endpoints()
            wait = next_full - time.monotonic()
            if self.endpoints is not None and self.vpp is not None:
                wait = min(wait, self.options.endpoint_period)
            self._wake.wait(max(wait, 0.0))

    def reconcile(self) -> bool:
        """One pass; False when VPP is unreachable (the loop then retries sooner)."""
        if not self.synced.is_set():
            return True  # never prune VPP against an empty cache before the first list
        started = time.perf_counter()
        with self._lock:
            pods = list(self.pods.values())
        try:
            vpp, restarted = self._vpp()
            wanted, refused = desired(pods, self.options.root, self.options.network)
            waiting: dict[str, str] = {}
            if self.pod_network is not None:
                wanted, waiting = self.pod_network.resolve(vpp, wanted)
            elif self.local_network is not None:
                wanted, waiting = self.local_network.resolve(vpp, wanted)
            applier = Applier(vpp, self.host, capacity=self.capacity, binding=self.binding,
                              before_conf=self._before_conf)  # fmt: skip
            results = applier.apply(plan(wanted, applier.observe(), keep=waiting))
            if self.local_network is not None:  # after their namespaces went
                self.local_network.prune(vpp, set(wanted) | set(waiting))
            self._report_sockets(wanted)
            self._refresh_endpoints(vpp, pods, wanted)
        except BindingError as exc:
            for pod in pods:
                if pod["metadata"]["uid"] in self.registrations:
                    self._set(pod, "error", str(exc))
            return False
        except (VppDisconnected, VppError, OSError) as exc:
            self._vpp_lost(pods, exc)
            return False
        self.registrations = wanted
        self._report(pods, wanted, {**refused, **waiting}, results, waiting=set(waiting))
        if restarted:
            self._after_restart(pods, wanted)
        self.metrics.resyncs.inc()
        self.metrics.resync_duration.observe(time.perf_counter() - started)
        return True

    def _report_socket(self, reg: PodRegistration) -> None:
        self.reports.ensure(reg, (reg.owner_uid, reg.owner_gid))

    def _before_conf(self, reg: PodRegistration) -> None:
        """What a pod needs before its vcl.conf lets its app start."""
        self._report_socket(reg)
        if self.endpoints is not None:
            self.endpoints.give(reg.uid, Path(reg.directory))

    def refresh_endpoints(self) -> None:
        """The endpoint table from VPP's listeners now (between full passes)."""
        vpp = self.vpp
        if vpp is None or self.endpoints is None:
            return
        with self._lock:
            pods = list(self.pods.values())
        try:
            self._refresh_endpoints(vpp, pods, self.registrations)
        except (VppDisconnected, VppError, OSError) as exc:
            log.info("endpoint table not refreshed (%s); a full pass follows", exc)
            self._wake.set()

    def _refresh_endpoints(
        self, vpp: VppClient, pods: list[dict[str, Any]], wanted: dict[str, PodRegistration]
    ) -> None:
        if self.endpoints is None:
            return
        started = time.perf_counter()
        by_uid = {p["metadata"]["uid"]: p for p in pods}
        chosen = {
            uid: (by_uid[uid], reg)
            for uid, reg in wanted.items()
            if uid in by_uid and os.path.isdir(reg.directory)
        }
        listeners = [Listener(s.ns_id, s.local, s.transport) for s in vpp.listeners() if s.ns_id]
        with self._lock:
            policies = list(self.policies.values()) if self.policies is not None else None
        written = self.endpoints.update(chosen, listeners, policies)
        self.metrics.endpoint_table_size.set(len(self.endpoints.plan.endpoints))
        if written:
            self.metrics.endpoint_publish.observe(time.perf_counter() - started)

    def _report_sockets(self, wanted: dict[str, PodRegistration]) -> None:
        """Every registered pod keeps a report socket (rebound after an agent restart)."""
        for reg in wanted.values():
            if os.path.isdir(reg.directory):
                try:
                    self._report_socket(reg)
                except OSError as exc:
                    log.warning("report socket for pod %s: %s", reg.uid, exc)
        self.reports.keep_only(set(wanted))

    def _vpp(self) -> tuple[VppClient, bool]:
        """A connected client, and whether VPP restarted since we last saw it.

        A restart is told by when VPP started (`show clock verbose`), never by its pid,
        which is 1 in a container. A restart always breaks the connection, so only a new
        connection can show one; the start time is kept on the host, so an agent that
        restarted too still notices."""
        if self.vpp is not None:
            self.vpp.ping()  # the connection still answers
            return self.vpp, False
        fresh = self.connect()
        try:
            self.binding = self._binding(fresh)
            started = fresh.started_at()
        except (BindingError, VppError):
            fresh.close()  # retried, interface lookup included, on the next pass
            raise
        self.vpp = fresh
        known = self.vpp_started if self.vpp_started is not None else self.host.vpp_started()
        restarted = known is not None and abs(started - known) > RESTART_TOLERANCE
        if restarted:
            self.metrics.vpp_restarts.inc()
            log.warning("VPP restarted (started %.0f, before %.0f): re-registering pods",
                        started, known)  # fmt: skip
        self.vpp_started = started
        self.host.record_vpp_started(started)
        self.vpp_down_since = None
        self.vpp_error = None
        self.metrics.vpp_up.set(1)
        if self.reporter:
            self.reporter.node_label(True)
            self.reporter.node_event("VppReady", f"VPP answers at {self._where()}")
        return self.vpp, restarted

    def _binding(self, vpp: VppClient) -> Binding:
        index = None
        if self.options.interface is not None:
            found = [i for i in vpp.interfaces() if i.name == self.options.interface]
            if not found:
                raise BindingError(
                    f"interface {self.options.interface!r} (--interface) is not in VPP; "
                    "pods stay unregistered until it exists"
                )
            index = found[0].index
        return Binding(index, self.options.ip4_fib_id, self.options.ip6_fib_id)

    def _where(self) -> str:
        vpp = self.vpp
        return str(getattr(vpp, "api_socket", "its API socket"))

    def _vpp_lost(self, pods: list[dict[str, Any]], exc: Exception) -> None:
        if self.vpp is not None:
            self.vpp.close()
        self.vpp = None
        self.metrics.vpp_up.set(0)
        reason, error = vpp_problem(exc)
        if self.vpp_down_since is None:
            self.vpp_down_since = time.monotonic()
            if self.reporter:
                self.reporter.node_label(False)
        if error != self.vpp_error:
            # Once per distinct problem: a version skew is not retried into a log flood.
            self.vpp_error = error
            log.error("%s", error)
            if self.reporter:
                self.reporter.node_event(reason, error, warning=True)
        for pod in pods:
            uid = pod["metadata"]["uid"]
            if uid in self.registrations:
                self._set(pod, "vpp-down", f"VPP on node {self.options.node} is down: {exc}")

    # --- reporting ----------------------------------------------------------------------

    def _report(
        self,
        pods: list[dict[str, Any]],
        wanted: dict[str, PodRegistration],
        refused: dict[str, str],
        results: list[ActionResult],
        *,
        waiting: Collection[str] = (),
    ) -> None:
        failed: dict[str, ActionResult] = {}
        for result in results:
            action = result.action
            if isinstance(action, AddNamespace | WriteConf):
                self.last_results[action.reg.uid] = result
                if not result.ok and action.reg.uid not in failed:
                    failed[action.reg.uid] = result
                    self.metrics.registration_errors.labels(result.outcome).inc()
        for pod in pods:
            uid = pod["metadata"]["uid"]
            if uid in waiting:
                self._set(pod, "waiting", refused[uid])
            elif uid in refused:
                self._set(pod, "refused", refused[uid])
            elif uid in failed:
                self._set(pod, "error", f"{failed[uid].outcome}: {failed[uid].message}")
            elif uid in wanted:
                self._set(pod, "registered", f"VPP app namespace {wanted[uid].ns_id} ready")
        with self._lock:
            live = set(self.pods)
        for uid in list(self.states):
            if uid not in live:
                del self.states[uid]
                self.last_results.pop(uid, None)
        registered = sum(1 for s in self.states.values() if s.state == "registered")
        self.metrics.pods_registered.set(registered)

    def _set(self, pod: dict[str, Any], state: str, message: str) -> None:
        uid = pod["metadata"]["uid"]
        current = self.states.setdefault(uid, PodState())
        if (current.state, current.message) == (state, message):
            return
        current.state, current.message = state, message
        if self.reporter is None:
            return
        ref = pod_ref(pod)
        ok = state == "registered"
        reason = {
            "registered": "Registered",
            "error": "RegistrationFailed",
            "refused": "InvalidStatus",
            "waiting": "WaitingForNetwork",
            "vpp-down": "VppDown",
        }[state]
        self.reporter.event(ref, reason, message, warning=state not in ("registered", "waiting"))
        self.reporter.condition(ref, ok, reason, message)
        if ok and not current.annotated:
            current.annotated = self.reporter.registered(ref, self.registrations[uid].ns_id)

    def _after_restart(
        self, pods: list[dict[str, Any]], wanted: dict[str, PodRegistration]
    ) -> None:
        """A VPP restart ended every attached app's sessions and VCL does not re-attach:
        the pods' controllers must recreate them (Eviction API: PDBs are honoured)."""
        if not self.options.evict_on_vpp_restart or self.reporter is None:
            return
        for pod in pods:
            if pod["metadata"]["uid"] not in wanted:
                continue
            ref = pod_ref(pod)
            self.reporter.event(
                ref,
                "VppRestarted",
                "VPP restarted and its app sessions are gone; the pod's namespace is "
                "re-registered and the pod evicted so that its controller recreates it",
                warning=True,
            )
            result = "evicted" if self.reporter.evict(ref) else "refused"
            self.metrics.evictions.labels(result).inc()

    def shutdown(self) -> None:
        """The agent stops (SIGTERM): nothing registers pods on this node any more, so the
        node stops offering VPP (new injected pods wait for an agent instead of hanging in
        vcl-init). With no pod registered (an uninstall after the documented steps),
        nothing of ours stays on the host either."""
        if self.reporter is not None:
            self.reporter.node_label(False)
        if not self.registrations:
            self.host.forget_vpp_started()
        self.reports.close()
        if self.vpp is not None:
            self.vpp.close()

    def pod_snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.pods.values())

    def wake(self) -> None:
        self._wake.set()
