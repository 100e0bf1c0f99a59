"""What the fake VPP knows: app namespaces, apps, sessions, interfaces, main heap.

Semantics follow VPP 26.06 as recorded in tests/fixtures/vpp (see its README) and
vnet_app_namespace_add_del in src/vnet/session/application_namespace.c.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

NO_INDEX = 0xFFFFFFFF
OK = 0
UNSPECIFIED = -1  # the namespace socket could not be created
SESSION_E_INVALID = -19  # leaked raw by the session API (api_errno would say SYSCALL_ERROR_9)
FEATURE_DISABLED = -30
ABSTRACT_PREFIX = "abstract:"
MIB = 1 << 20


class VppCrash(Exception):
    """The fake VPP dies (like SIGSEGV or abort in the real one): all connections drop."""


@dataclass(frozen=True)
class HeapModel:
    """Main-heap accounting. Defaults reproduce the measurement on VPP 26.06: ~7 MB per
    namespace with default session tables, and a 1 GiB heap dying at the 139th one."""

    size: int = 1 << 30
    base_used: int = 55 * MIB  # VPP itself, before any app namespace
    per_namespace: int = 7 * MIB


@dataclass
class Namespace:
    index: int
    ns_id: str
    sock_name: str
    secret: int = 0
    sw_if_index: int = 0  # a half-made namespace keeps 0 (local0), as VPP shows it
    ip4_fib_id: int = 0
    ip6_fib_id: int = 0
    crashes_on_delete: bool = False
    listener: socket.socket | None = None
    fd: int = -1  # VPP's fd of the namespace socket, shown by `api-clients`


@dataclass
class Interface:
    index: int
    name: str
    vrf: int = 0
    addresses: list[ipaddress.IPv4Interface | ipaddress.IPv6Interface] = field(default_factory=list)
    admin_up: bool = True
    link_up: bool = True
    tag: str = ""
    vrf6: int = 0


@dataclass
class Worker:
    index: int  # VPP's global app-worker index (0 is VPP's own app 0)
    fd: int  # VPP's fd of the worker's connection to the namespace socket


@dataclass
class App:
    index: int
    name: str
    ns_id: str
    workers: list[Worker]  # by per-app worker number
    eventfd: bool = True


@dataclass
class Session:
    index: int
    app_index: int
    wrk_index: int
    kind: str  # "listener", "connected" (we connected out) or "accepted"
    transport: str
    local: str
    remote: str
    state: str


def lowest_free(used: Collection[int], start: int = 0) -> int:
    """VPP pools hand out the lowest free index again after a delete."""
    index = start
    while index in used:
        index += 1
    return index


@dataclass
class VppModel:
    """The state of one fake VPP process; a restart replaces it with a fresh one."""

    socket_dir: str  # where VPP puts namespace sockets without a sock_name
    heap: HeapModel
    fs_root: Path | None = None
    session_enabled: bool = True
    namespaces: dict[int, Namespace] = field(default_factory=dict)
    interfaces: dict[int, Interface] = field(default_factory=dict)
    fibs: set[int] = field(default_factory=lambda: {0})
    apps: dict[int, App] = field(default_factory=dict)
    sessions: dict[int, Session] = field(default_factory=dict)
    next_fd: int = 16
    next_session: int = 0
    started_at: float = field(default_factory=time.time)  # `show clock verbose`'s init

    def __post_init__(self) -> None:
        self.interfaces[0] = Interface(0, "local0", admin_up=False, link_up=False)
        default = Namespace(0, "default", f"{self.socket_dir}/default", sw_if_index=NO_INDEX)
        self.namespaces[0] = default
        self._open_socket(default)

    @property
    def heap_used(self) -> int:
        return self.heap.base_used + self.heap.per_namespace * (len(self.namespaces) - 1)

    def by_id(self, ns_id: str) -> Namespace | None:
        return next((ns for ns in self.namespaces.values() if ns.ns_id == ns_id), None)

    def add_namespace(
        self, ns_id: str, sock_name: str, secret: int, sw_if_index: int, fibs: tuple[int, int]
    ) -> tuple[int, int]:
        """app_namespace_add_del is_add: (retval, appns_index)."""
        if not self.session_enabled:
            return FEATURE_DISABLED, 0
        ip4_fib, ip6_fib = fibs
        if sw_if_index != NO_INDEX:
            if sw_if_index not in self.interfaces:
                return SESSION_E_INVALID, 0
            ip4_fib = ip6_fib = self.interfaces[sw_if_index].vrf  # the interface wins
        elif ip4_fib == NO_INDEX and ip6_fib == NO_INDEX:
            return SESSION_E_INVALID, 0  # neither an interface nor a table
        if any(fib != NO_INDEX and fib not in self.fibs for fib in (ip4_fib, ip6_fib)):
            return SESSION_E_INVALID, 0
        ns = self.by_id(ns_id)
        if ns is None:
            if self.heap_used + self.heap.per_namespace > self.heap.size:
                raise VppCrash("main heap exhausted: out of memory, VPP aborts")
            index = lowest_free(self.namespaces)
            ns = Namespace(index, ns_id, sock_name or f"{self.socket_dir}/{ns_id}")
            self.namespaces[index] = ns
            # The socket is made only at creation; on failure the namespace stays,
            # half-made (secret 0, local0): VPP 26.06 does not roll back.
            if not self._open_socket(ns):
                return UNSPECIFIED, 0
        ns.secret, ns.sw_if_index = secret, sw_if_index
        ns.ip4_fib_id, ns.ip6_fib_id = ip4_fib, ip6_fib
        return OK, ns.index

    def del_namespace(self, ns_id: str) -> int:
        """app_namespace_add_del delete: retval. Detaches the namespace's apps."""
        if not self.session_enabled:
            return FEATURE_DISABLED
        ns = self.by_id(ns_id)
        if ns is None:
            return SESSION_E_INVALID
        if ns.crashes_on_delete:
            raise VppCrash(
                f"SIGSEGV deleting namespace {ns_id!r} with unusable socket {ns.sock_name!r} "
                "(null function call in appns_sapi_del_ns_socket)"
            )
        for app in [a for a in self.apps.values() if a.ns_id == ns_id]:
            self.detach(app.index)
        if ns.listener is not None:
            ns.listener.close()  # VPP leaves the socket file on disk
        del self.namespaces[ns.index]
        return OK

    def _open_socket(self, ns: Namespace) -> bool:
        if ns.sock_name.startswith(ABSTRACT_PREFIX):
            # Recorded, not bound: parallel tests would collide in the abstract namespace.
            # VPP opens the netns first (an absolute path, or a name under
            # /var/run/netns) and fails like a missing directory when it is not there.
            # Bare names are looked up only under an fs_root (never the real /var/run).
            _, _, netns = ns.sock_name.partition(",netns_name=")
            if netns and (netns.startswith("/") or self.fs_root is not None):
                where = netns if netns.startswith("/") else f"/var/run/netns/{netns}"
                if not self.host_path(where).exists():
                    return False
            ns.listener = None
        elif not ns.sock_name.startswith("/"):
            # VPP 26.06 parses it as a host name or fails, and then crashes on delete.
            ns.crashes_on_delete = True
            return False
        else:
            path = self.host_path(ns.sock_name)
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                if path.is_socket():
                    path.unlink()  # re-adding an id replaces the file left behind
                listener.bind(os.fspath(path))
                listener.listen()
            except OSError:
                listener.close()
                return False
            ns.listener = listener
        if ns.index != 0:
            ns.fd = self.take_fd()
        return True

    def host_path(self, sock_name: str) -> Path:
        """Where a socket path really lives (under fs_root when one is set)."""
        if self.fs_root is None:
            return Path(sock_name)
        return self.fs_root / sock_name.lstrip("/")

    def take_fd(self) -> int:
        self.next_fd += 1
        return self.next_fd - 1

    def attach(self, ns_id: str, name: str, workers: int, eventfd: bool) -> App:
        ns = self.by_id(ns_id)
        if ns is None:
            raise KeyError(f"no app namespace {ns_id!r}")
        index = lowest_free(self.apps, start=1)  # app 0 is VPP's own (see `show app mq`)
        app = App(index, name, ns_id, [], eventfd)
        for _ in range(workers):
            taken = {w.index for a in self.apps.values() for w in a.workers} | {0}
            taken |= {w.index for w in app.workers}
            app.workers.append(Worker(lowest_free(taken), self.take_fd()))
        self.apps[index] = app
        return app

    def detach(self, app_index: int) -> None:
        self.apps.pop(app_index)
        for key in [k for k, s in self.sessions.items() if s.app_index == app_index]:
            del self.sessions[key]

    def close_sockets(self) -> None:
        for ns in self.namespaces.values():
            if ns.listener is not None:
                ns.listener.close()
