"""calico-vpp mode: each pod's app namespace is bound to the pod's own interface in the
node's VPP (Calico/VPP gives every pod a loopback carrying its IPs, in the pod's VRF),
found by the pod IP in VPP's interface and address dumps; and VPP creates the app socket
as an abstract socket inside the pod sandbox's network namespace, found through the CRI.

A pod that cannot be placed yet (no IP, no sandbox, no interface) waits: it is reported,
and whatever VPP already has for it is kept, never pruned."""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from typing import Protocol

from injector.agent.cri import CriError
from injector.agent.registration import PodRegistration, abstract_sock_name
from vppctl_py import Interface, VppApiError, VppClient, interface_with_address


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


POD_INTERFACE_TAG = "vcl:"  # + pod uid: the loopbacks this agent made, found again by tag


class LocalPodNetwork:
    """Mode local: each registered pod gets a loopback in the node VRF carrying its IPs,
    and its app namespace is bound to it, so VPP serves the pod's listeners at the pod's
    own addresses (a wildcard listen becomes the loopback's address) and pods on the node
    reach each other through VPP's cut-through by pod IP (ARCHITECTURE.md, mode local).
    The loopback is made before the namespace and removed after it."""

    def __init__(self, vrf: int, vrf_name: str = "vcl-node") -> None:
        self.vrf = vrf
        self.vrf_name = vrf_name
        self._seen: dict[str, int] = {}  # uid -> loopback index, as the last resolve saw

    def resolve(
        self, vpp: VppClient, wanted: Mapping[str, PodRegistration]
    ) -> tuple[dict[str, PodRegistration], dict[str, str]]:
        """(registrations bound to their loopbacks, uid -> why the others wait)."""
        mine = self._loopbacks(vpp)
        self._seen = {uid: i.index for uid, i in mine.items()}
        if not wanted:
            return {}, {}
        vpp.ensure_vrf(self.vrf, self.vrf_name)
        ready: dict[str, PodRegistration] = {}
        waiting: dict[str, str] = {}
        made = False
        for uid, reg in wanted.items():
            if not reg.pod_ips:
                waiting[uid] = "waiting for the pod's IP address (status.podIPs)"
                continue
            iface = mine.get(uid)
            have = {a.address for a in iface.addresses} if iface else set()
            if iface is not None and (have != set(reg.pod_ips) or iface.vrf != self.vrf):
                vpp.del_interface(iface.index, missing_ok=True)  # the pod's IPs changed
                iface = None
            if iface is None:
                tag = f"{POD_INTERFACE_TAG}{uid}"
                try:
                    index = vpp.add_pod_interface(tag, reg.pod_ips, self.vrf)
                except VppApiError as exc:
                    waiting[uid] = (
                        f"VPP refused the pod's interface for {', '.join(reg.pod_ips)}: {exc}"
                    )
                    continue
                made = True
                ready[uid] = replace(reg, sw_if_index=index)
            else:
                ready[uid] = replace(reg, sw_if_index=iface.index, interface_name=iface.name)
        if made:  # VPP names a loopback only in its dump: one more dump for all the new ones
            mine = self._loopbacks(vpp)
            ready = {uid: replace(reg, interface_name=mine[uid].name) if uid in mine else reg
                     for uid, reg in ready.items()}  # fmt: skip
        self._seen = {uid: i.index for uid, i in mine.items()}
        return ready, waiting

    def prune(self, vpp: VppClient, keep: Collection[str]) -> None:
        """The loopbacks of pods no longer registered (after their namespaces went), as
        the last resolve saw them."""
        for uid, index in self._seen.items():
            if uid not in keep:
                vpp.del_interface(index, missing_ok=True)
        self._seen = {uid: index for uid, index in self._seen.items() if uid in keep}

    @staticmethod
    def _loopbacks(vpp: VppClient) -> dict[str, Interface]:
        """This agent's loopbacks in VPP, by pod uid (their tag)."""
        return {
            i.tag.removeprefix(POD_INTERFACE_TAG): i
            for i in vpp.interfaces()
            if i.tag.startswith(POD_INTERFACE_TAG)
        }
