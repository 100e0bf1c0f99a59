"""apply(): carry out planned actions against VPP and the host, one by one, recording each
result. VppDisconnected is not caught here: the controller reconnects and replans."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from injector.agent.hostfiles import HostFiles
from injector.agent.plan import (
    Action,
    AddNamespace,
    DeleteNamespace,
    Observed,
    ObservedNamespace,
    RemoveDirectory,
    WriteConf,
)
from injector.agent.registration import ABSTRACT_SOCKET_NAME, PodRegistration
from vppctl_py import VppApiError, VppClient, VppInputError

MIB = 1024 * 1024


@dataclass(frozen=True)
class Binding:
    """What a `local`-mode namespace is bound to: an interface by index, FIB tables, or none."""

    sw_if_index: int | None = None
    ip4_fib_id: int | None = None
    ip6_fib_id: int | None = None


@dataclass(frozen=True)
class ActionResult:
    action: Action
    outcome: str  # ok | vpp-error | capacity | invalid | io-error | skipped
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


class CapacityGuard:
    """VPP 26.06 aborts (not errors) when its main heap runs out, killing every pod's
    dataplane: a namespace is added only when the heap has room for it. The cost per
    namespace is learned from the heap before/after an add (the largest seen), starting
    from the configured estimate (~7 MB with default session tables).

    One pass reads the heap once and then counts down by the cost of each add; it reads
    again (and re-learns) only when the count gets within a few namespaces of the limit,
    so a resync of many pods costs two CLI calls, not three per pod."""

    def __init__(self, estimate: int = 7 * MIB, reserve: int = 32 * MIB) -> None:
        self.cost = estimate
        self.reserve = reserve  # what VPP itself needs to keep running (sessions, CLI)
        self._available: int | None = None
        self._measured = False

    def begin(self) -> None:
        """A new pass: forget the countdown (VPP may have changed meanwhile)."""
        self._available = None
        self._measured = False

    def check(self, vpp: VppClient) -> tuple[bool, int | None]:
        """(fits, heap bytes used now when it was read for this add, else None)."""
        near = self._available is None or self._available < self.reserve + 4 * self.cost
        used = None
        if near or not self._measured:
            heap = vpp.memory()
            self._available, used = heap.available, heap.used
        assert self._available is not None
        return self._available >= self.cost + self.reserve, used

    def learn(self, vpp: VppClient, used_before: int | None) -> None:
        if used_before is not None:
            heap = vpp.memory()
            self.cost = max(self.cost, heap.used - used_before)
            self._available = heap.available
            self._measured = True
        elif self._available is not None:
            self._available -= self.cost


class Applier:
    def __init__(
        self,
        vpp: VppClient,
        host: HostFiles,
        *,
        capacity: CapacityGuard | None = None,
        binding: Binding = Binding(),
        before_conf: Callable[[PodRegistration], None] | None = None,
    ) -> None:
        self.vpp, self.host = vpp, host
        self.capacity = capacity or CapacityGuard()
        self.binding = binding
        # What must exist before vcl.conf, the pod's go-ahead (the report socket).
        self.before_conf = before_conf

    def observe(self) -> Observed:
        namespaces = {
            ns.ns_id: ObservedNamespace(ns.ns_id, ns.secret, ns.sock_name, ns.interface)
            for ns in self.vpp.app_namespaces()
        }
        return Observed(namespaces=namespaces, directories=self.host.observe())

    def apply(self, actions: list[Action]) -> list[ActionResult]:
        self.capacity.begin()
        results: list[ActionResult] = []
        failed: set[str] = set()
        for action in actions:
            uid = action.reg.uid if isinstance(action, AddNamespace | WriteConf) else None
            if uid in failed and isinstance(action, WriteConf):
                # vcl.conf is the pod's go-ahead (vcl-init waits for it): never without
                # a namespace behind it.
                results.append(ActionResult(action, "skipped", "its namespace was not added"))
                continue
            result = self._one(action)
            if not result.ok and uid is not None:
                failed.add(uid)
            results.append(result)
        return results

    def _one(self, action: Action) -> ActionResult:
        try:
            if isinstance(action, DeleteNamespace):
                self.vpp.del_app_namespace(action.ns_id, missing_ok=True)
                self.host.remove_socket(action.sock_name)
            elif isinstance(action, RemoveDirectory):
                self.host.remove_directory(action.uid)
            elif isinstance(action, AddNamespace):
                return self._add(action)
            elif isinstance(action, WriteConf):
                self.host.prepare(action.reg)
                if self.before_conf is not None:
                    self.before_conf(action.reg)
                self.host.write_conf(action.reg)
        except VppInputError as exc:
            return ActionResult(action, "invalid", str(exc))
        except VppApiError as exc:
            return ActionResult(action, "vpp-error", str(exc))
        except OSError as exc:
            return ActionResult(action, "io-error", f"{exc.filename}: {exc.strerror}")
        return ActionResult(action, "ok")

    def _add(self, action: AddNamespace) -> ActionResult:
        reg = action.reg
        used_before: int | None = None
        if action.new:
            fits, used_before = self.capacity.check(self.vpp)
            if not fits:
                return ActionResult(
                    action,
                    "capacity",
                    f"VPP's main heap has no room for another app namespace (about "
                    f"{self.capacity.cost // MIB} MiB each plus {self.capacity.reserve // MIB} "
                    "MiB reserve); not added, since VPP aborts when its heap runs out. "
                    "Raise main-heap-size or lower the session table sizes in startup.conf",
                )
        secret = action.secret if action.secret is not None else secrets.randbits(64)
        self.host.prepare(reg)
        # The env file first: a pod must never find a namespace whose secret it lacks.
        self.host.write_env(reg, secret)
        if reg.netns is not None:  # calico-vpp: the pod's interface, a socket in its netns
            self.vpp.add_app_namespace(
                reg.ns_id,
                secret,
                f"abstract:{ABSTRACT_SOCKET_NAME}",
                netns=reg.netns,
                sw_if_index=reg.sw_if_index,
            )
        else:
            # the pod's own loopback (mode local's default) wins over the node-wide binding
            own = reg.sw_if_index is not None
            self.vpp.add_app_namespace(
                reg.ns_id,
                secret,
                reg.sock_name,
                sw_if_index=reg.sw_if_index if own else self.binding.sw_if_index,
                ip4_fib_id=None if own else self.binding.ip4_fib_id,
                ip6_fib_id=None if own else self.binding.ip6_fib_id,
            )
        self.host.own_socket(reg)
        if action.new:
            self.capacity.learn(self.vpp, used_before)
        return ActionResult(action, "ok")
