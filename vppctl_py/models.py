"""Frozen dataclasses returned by the VPP client: versions, namespaces, apps, sessions."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

# sw_if_index / fib id meaning "none" in VPP's API (~0).
NO_INDEX = 0xFFFFFFFF


@dataclass(frozen=True)
class Version:
    """show_version_reply: `version` is e.g. "26.06-release"."""

    program: str
    version: str
    build_date: str
    build_directory: str


@dataclass(frozen=True)
class Ping:
    """control_ping_reply: the VPP process id changes when VPP restarts."""

    vpe_pid: int


@dataclass(frozen=True)
class AppNamespace:
    """One row of `show app ns`. `interface` is VPP's name for the bound interface, or
    "DELETED (4294967295)" when bound to none (that is how VPP 26.06 prints ~0)."""

    index: int
    ns_id: str
    secret: int
    interface: str
    sock_name: str

    @property
    def bound_to_interface(self) -> bool:
        return not self.interface.startswith("DELETED")


@dataclass(frozen=True)
class AppWorker:
    """One app worker as `show app mq` lists it: `wrk_index` is VPP's global app-worker
    index (unique across apps), not the per-app 0..n-1 number of `api-clients`."""

    app_index: int
    wrk_index: int


@dataclass(frozen=True)
class App:
    """An attached application and its workers (one per app thread with
    multi-thread-workers)."""

    index: int
    name: str
    ns_id: str
    workers: tuple[AppWorker, ...] = ()


@dataclass(frozen=True)
class Session:
    """One session of `show session verbose`, with the app that owns it where the CLI
    texts tell (see `vppctl_py.text.sessions`)."""

    thread: int
    index: int
    transport: str  # e.g. "CT:T" (cut-through TCP) or "T"
    local: str  # "ip:port"
    remote: str
    state: str
    rx_fifo: int
    tx_fifo: int
    app: str | None = None
    ns_id: str | None = None


@dataclass(frozen=True)
class InterfaceAddress:
    """An interface address with its prefix length, e.g. 10.99.0.1/24."""

    address: str
    prefix_len: int

    def __str__(self) -> str:
        return f"{self.address}/{self.prefix_len}"


@dataclass(frozen=True)
class Interface:
    """sw_interface_details plus the addresses from ip_address_dump."""

    index: int
    name: str
    admin_up: bool
    link_up: bool
    vrf: int  # the IPv4 FIB table id the interface is in
    addresses: tuple[InterfaceAddress, ...] = ()
    tag: str = ""  # sw_interface_tag_add_del's: the agent tags each pod's loopback


@dataclass(frozen=True)
class MainHeap:
    """VPP's main heap, from `show memory main-heap` (bytes; the CLI prints two decimals,
    so values are exact only to that precision)."""

    size: int  # the heap's fixed capacity (main-heap-size)
    total: int  # dlmalloc arena: what the heap manages
    used: int
    free: int
    trimmable: int

    @property
    def available(self) -> int:
        """Bytes still allocatable: the heap cannot grow past `size`."""
        return max(0, min(self.free, self.size - self.used))


def interface_with_address(interfaces: Iterable[Interface], ip: str) -> Interface | None:
    """The interface holding address `ip` (how the agent finds a pod's interface in
    calico-vpp mode), or None. IPv6 spellings are compared as addresses, not text."""
    wanted = ipaddress.ip_address(ip)
    for iface in interfaces:
        if any(ipaddress.ip_address(a.address) == wanted for a in iface.addresses):
            return iface
    return None
