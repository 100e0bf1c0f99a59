"""calico-vpp mode: each pod's app namespace is bound to the pod's own interface in the
node's VPP (Calico/VPP gives every pod a loopback carrying its IPs, in the pod's VRF),
found by the pod IP in VPP's interface and address dumps; and VPP creates the app socket
as an abstract socket inside the pod sandbox's network namespace, found through the CRI.

A pod that cannot be placed yet (no IP, no sandbox, no interface) waits: it is reported,
and whatever VPP already has for it is kept, never pruned."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Protocol

from injector.agent.cri import CriError
from injector.agent.registration import PodRegistration, abstract_sock_name
from vppctl_py import VppClient, interface_with_address


class Locator(Protocol):
    def refresh(self, uids: list[str]) -> None: ...
    def netns(self, uid: str) -> str | None: ...


class CalicoVppNetwork:
    def __init__(
        self, locator: Locator, *, netns_exists: Callable[[str], bool] = os.path.exists
    ) -> None:
        self.locator = locator
        # VPP keeps a half-made namespace when it cannot open the netns: check first
        # (the agent mounts the host's /var/run/netns at the same path).
        self.netns_exists = netns_exists

    def resolve(
        self, vpp: VppClient, wanted: Mapping[str, PodRegistration]
    ) -> tuple[dict[str, PodRegistration], dict[str, str]]:
        """(registrations ready to apply, uid -> why the others wait)."""
        if not wanted:
            return {}, {}
        try:
            self.locator.refresh(sorted(wanted))
        except CriError as exc:
            return {}, {uid: str(exc) for uid in wanted}
        interfaces = vpp.interfaces()
        ready: dict[str, PodRegistration] = {}
        waiting: dict[str, str] = {}
        for uid, reg in wanted.items():
            if not reg.pod_ip:
                waiting[uid] = "waiting for the pod's IP address (status.podIP)"
                continue
            iface = interface_with_address(interfaces, reg.pod_ip)
            if iface is None:
                waiting[uid] = (
                    f"no interface in this node's VPP has the pod IP {reg.pod_ip}: "
                    "--network calico-vpp needs Calico/VPP as the pod network"
                )
                continue
            netns = self.locator.netns(uid)
            if netns is None:
                waiting[uid] = (
                    "the container runtime reports no ready sandbox with a network "
                    "namespace for this pod"
                )
                continue
            if not self.netns_exists(netns):
                waiting[uid] = (
                    f"the pod's network namespace {netns} is not visible to the agent "
                    "(is the host's /var/run/netns mounted?); not sent to VPP, which keeps "
                    "a half-made namespace when it cannot open one"
                )
                continue
            ready[uid] = replace(
                reg, netns=netns, sw_if_index=iface.index, sock_name=abstract_sock_name(netns)
            )
        return ready, waiting
