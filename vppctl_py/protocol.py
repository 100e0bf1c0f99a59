"""VppClient: the client API as a Protocol, for code that should not care what is behind it."""

from __future__ import annotations

from typing import Protocol

from vppctl_py.backoff import Backoff
from vppctl_py.models import App, AppNamespace, Interface, MainHeap, Ping, Session, Version


class VppClient(Protocol):
    """What `Vpp` offers; the agent types against this, tests may pass any implementation."""

    @property
    def connected(self) -> bool: ...

    def close(self) -> None: ...

    def reconnect(self, backoff: Backoff | None = None) -> None: ...

    def version(self) -> Version: ...

    def ping(self) -> Ping: ...

    def started_at(self) -> float: ...

    def cli(self, cmd: str) -> str: ...

    def session_enable(self) -> None: ...

    def add_app_namespace(
        self,
        ns_id: str,
        secret: int,
        sock_name: str,
        netns: str | None = None,
        sw_if_index: int | None = None,
        ip4_fib_id: int | None = None,
        ip6_fib_id: int | None = None,
    ) -> int: ...

    def del_app_namespace(self, ns_id: str, *, missing_ok: bool = False) -> None: ...

    def app_namespaces(self) -> list[AppNamespace]: ...

    def apps(self) -> list[App]: ...

    def sessions(self, ns_id: str | None = None) -> list[Session]: ...

    def interfaces(self) -> list[Interface]: ...

    def memory(self) -> MainHeap: ...
