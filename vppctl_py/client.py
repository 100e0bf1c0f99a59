"""Vpp: the typed VPP client. Every method returns frozen dataclasses, never papi tuples."""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from vppctl_py import cli_text
from vppctl_py.backoff import Backoff, retry
from vppctl_py.connection import (
    DEFAULT_API_SOCKET,
    DEFAULT_TIMEOUT,
    PapiConnection,
    resolve_api_dir,
)
from vppctl_py.errors import (
    VppApiError,
    VppCliError,
    VppConnectError,
    VppError,
    VppInputError,
)
from vppctl_py.models import (
    NO_INDEX,
    App,
    AppNamespace,
    AppWorker,
    Interface,
    InterfaceAddress,
    MainHeap,
    Ping,
    Session,
    Version,
)
from vppctl_py.protocol import VppClient
from vppctl_py.validation import (
    ABSTRACT_PREFIX,
    FieldLimits,
    check_netns,
    check_ns_id,
    check_sock_name,
    check_uint,
)

# session_enable_disable_v2: enable the session layer without a rule-table engine, as
# the VPP the fixtures were captured from runs (`session { enable use-app-socket-api }`).
RT_BACKEND_ENGINE_NONE = 2
SESSION_E_INVALID = -19
FEATURE_DISABLED = -30
IF_ADMIN_UP = 1
IF_LINK_UP = 2
INVALID_SW_IF_INDEX = -2


class Vpp:
    """A connection to one VPP over its binary API socket (vpp-papi, socket transport).

    Use `Vpp.connect(...)`, ideally as a context manager. Methods raise `VppApiError` for
    a non-zero retval, `VppInputError` before sending a bad value, `VppDisconnected` once
    the connection broke (call `reconnect()`), and `CliTextError` if CLI text has an
    unexpected shape. Not for concurrent use from several threads (calls are serialised).
    """

    def __init__(
        self, conn: PapiConnection, *, api_dir: Path | None, timeout: float, name: str
    ) -> None:
        self._conn = conn
        self._api_dir = api_dir
        self._timeout = timeout
        self._name = name
        self.limits = FieldLimits.from_msgdefs(conn.message_definitions())

    @classmethod
    def connect(
        cls,
        api_socket: str = DEFAULT_API_SOCKET,
        api_dir: str | os.PathLike[str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        name: str = "vppctl-py",
    ) -> Vpp:
        """Connect and check that VPP speaks the messages of a supported release.

        api_dir: a *.api.json tree to load instead of asking VPP (default
        $VPP_API_DIR; unset: the definitions come from the running VPP itself, so no
        API files need be installed). Raises VppConnectError, VppApiDefinitionsError,
        VppVersionMismatch (api_dir differs from VPP) or VppUnsupportedRelease."""
        directory = resolve_api_dir(api_dir)
        conn = PapiConnection.open(api_socket, directory, timeout, name)
        return cls(conn, api_dir=directory, timeout=timeout, name=name)

    @property
    def api_socket(self) -> str:
        return self._conn.api_socket

    @property
    def release(self) -> str:
        """The supported VPP release (e.g. "26.06") whose messages this VPP speaks."""
        return self._conn.release

    @property
    def connected(self) -> bool:
        """False once the connection broke or was closed."""
        return self._conn.broken is None

    def close(self) -> None:
        """Disconnect (idempotent)."""
        self._conn.close()

    def __enter__(self) -> Vpp:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def reconnect(self, backoff: Backoff | None = None) -> None:
        """Drop the current connection and open a new one, retrying with backoff while
        VPP is unreachable (e.g. restarting). Raises the last VppConnectError if
        attempts run out. State in VPP may be gone: resync after this."""
        self._conn.close()

        def attempt() -> PapiConnection:
            return PapiConnection.open(self.api_socket, self._api_dir, self._timeout, self._name)

        self._conn = retry(attempt, backoff or Backoff(), retry_on=(VppConnectError,))

    # --- plain API calls -------------------------------------------------------------

    def version(self) -> Version:
        """show_version."""
        r = self._conn.checked("show_version")
        return Version(r.program, r.version, r.build_date, r.build_directory)

    def ping(self) -> Ping:
        """control_ping: cheap liveness check; vpe_pid changes when VPP restarts."""
        r = self._conn.checked("control_ping")
        return Ping(r.vpe_pid)

    def started_at(self) -> float:
        """When this VPP process started (unix seconds; `show clock verbose`). Unlike
        control_ping's vpe_pid it changes on every restart, also in a container."""
        return cli_text.parse_clock_init(self.cli("show clock verbose"))

    def cli(self, cmd: str) -> str:
        """Run a debug CLI command (cli_inband) and return VPP's text verbatim.

        Raises VppCliError (retval -1 and VPP's message) for an unknown command. Some
        bad inputs still return 0 with an error text (e.g. `show app ns verbose` →
        "unknown input [verbose]"): the text is returned as it is."""
        r = self._conn.call("cli_inband", cmd=cmd)
        if r.retval != 0:
            raise VppCliError(cmd, r.retval, r.reply)
        return str(r.reply)

    def session_enable(self) -> None:
        """Enable the session layer (a no-op returning 0 when it is already on)."""
        self._conn.checked("session_enable_disable_v2", rt_engine_type=RT_BACKEND_ENGINE_NONE)

    # --- app namespaces ----------------------------------------------------------------

    def add_app_namespace(
        self,
        ns_id: str,
        secret: int,
        sock_name: str,
        netns: str | None = None,
        sw_if_index: int | None = None,
        ip4_fib_id: int | None = None,
        ip6_fib_id: int | None = None,
    ) -> int:
        """Create (or update) app namespace `ns_id`; returns its index.

        sock_name: an absolute path or `abstract:NAME`; with `netns`, it must be
        `abstract:NAME` and VPP creates the socket inside that network namespace.
        Bind to `sw_if_index`, or else to the FIB ids (default 0, the default table).
        VPP 26.06: adding an existing id returns 0 and its index, updates secret and
        binding but keeps the old socket (delete and re-add to move it); a bad binding
        returns -19 (SESSION_E_INVALID)."""
        self._check_namespace_args(ns_id, secret, sock_name, netns)
        binding = {
            "sw_if_index": NO_INDEX if sw_if_index is None else sw_if_index,
            "ip4_fib_id": 0 if ip4_fib_id is None else ip4_fib_id,
            "ip6_fib_id": 0 if ip6_fib_id is None else ip6_fib_id,
        }
        for key, value in binding.items():
            check_uint(value, 32, key)
        fields = {"is_add": True, "secret": secret, "namespace_id": ns_id, **binding}
        if netns is None:
            r = self._conn.checked("app_namespace_add_del_v4", sock_name=sock_name, **fields)
        else:
            # VPP builds "abstract:NAME,netns_name=NETNS" from the bare NAME itself.
            name = sock_name.removeprefix(ABSTRACT_PREFIX)
            r = self._conn.checked(
                "app_namespace_add_del_v3", sock_name=name, netns=netns, **fields
            )
        return int(r.appns_index)

    def _check_namespace_args(
        self, ns_id: str, secret: int, sock_name: str, netns: str | None
    ) -> None:
        check_ns_id(ns_id, self.limits)
        check_uint(secret, 64, "secret")
        check_sock_name(sock_name)
        if netns is not None:
            check_netns(netns, self.limits)
            if not sock_name.startswith(ABSTRACT_PREFIX):
                raise VppInputError(
                    "sock_name", sock_name, "must be 'abstract:NAME' when netns is given"
                )

    def del_app_namespace(self, ns_id: str, *, missing_ok: bool = False) -> None:
        """Delete app namespace `ns_id` (its socket file stays on disk: VPP 26.06 leaves it).

        A missing namespace raises VppApiError -19 (SESSION_E_INVALID) unless
        missing_ok. A namespace whose socket name is invalid (left half-made by a
        failed add: neither a path nor `abstract:`, so VPP could not even parse it) is
        refused with VppInputError: deleting it crashes VPP 26.06."""
        check_ns_id(ns_id, self.limits)
        for ns in self.app_namespaces():
            if ns.ns_id == ns_id and not ns.sock_name.startswith(("/", ABSTRACT_PREFIX)):
                raise VppInputError(
                    "ns_id",
                    ns_id,
                    f"has invalid socket name {ns.sock_name!r}: deleting it crashes VPP "
                    "26.06 (SIGSEGV); restart VPP to clear it",
                )
        try:
            self._conn.checked(
                "app_namespace_add_del_v4", is_add=False, namespace_id=ns_id, sock_name=""
            )
        except VppApiError as e:
            if not (missing_ok and e.retval == SESSION_E_INVALID):
                raise

    def app_namespaces(self) -> list[AppNamespace]:
        """All app namespaces, `default` (index 0) included. Parsed from `show app ns`
        (VPP has no dump message for namespaces)."""
        return cli_text.parse_app_namespaces(self._session_cli("show app ns"))

    def apps(self) -> list[App]:
        """Attached apps with their workers, parsed from `show app` and `show app mq`
        (no dump message exists; VCL registers each worker itself over the namespace
        socket, one per thread with multi-thread-workers, never through this API)."""
        rows = cli_text.parse_apps(self._session_cli("show app"))
        workers: dict[int, list[AppWorker]] = {}
        for worker in cli_text.parse_app_workers(self._session_cli("show app mq")):
            workers.setdefault(worker.app_index, []).append(worker)
        return [
            App(row.index, row.name, row.ns_id, tuple(workers.get(row.index, ()))) for row in rows
        ]

    def sessions(self, ns_id: str | None = None) -> list[Session]:
        """Sessions from `show session verbose`, owned by apps per `show app listeners`
        and `show app client`; accepted sessions are matched to the app listening on
        their local endpoint. With ns_id, only the sessions of that namespace's apps."""
        sessions = cli_text.parse_sessions(self._session_cli("show session verbose"))
        if not sessions:
            return []
        owners = cli_text.parse_session_owners(self._session_cli("show app listeners"))
        owners += cli_text.parse_session_owners(self._session_cli("show app client"))
        found = cli_text.attribute_sessions(sessions, owners, self._app_namespaces())
        return [s for s in found if ns_id is None or s.ns_id == ns_id]

    def listeners(self) -> list[Session]:
        """The listening sessions with their app and namespace, from `show app listeners`
        and `show app` alone: cheap whatever the number of connections (the agent reads
        them every second for the node's endpoint table)."""
        app_ns = self._app_namespaces()
        return [
            Session(
                o.thread,
                o.index,
                o.transport,
                o.local,
                o.remote,
                "LISTEN",
                0,
                0,
                o.app,
                app_ns.get(cli_text.app_key(o.app)),
            )
            for o in cli_text.parse_session_owners(self._session_cli("show app listeners"))
        ]

    def _app_namespaces(self) -> dict[str, str]:
        """App name (its first 20 characters, all the CLI tells) -> its namespace id, from
        `show app`. A name seen in two namespaces cannot tell which one a session is in: it
        is left out (the injector names apps "<container>-<pod uid>-..." to avoid that)."""
        namespaces: dict[str, set[str]] = {}
        for row in cli_text.parse_apps(self._session_cli("show app")):
            namespaces.setdefault(cli_text.app_key(row.name), set()).add(row.ns_id)
        return {name: ids.pop() for name, ids in namespaces.items() if len(ids) == 1}

    def _session_cli(self, cmd: str) -> str:
        text = self.cli(cmd)
        if cli_text.SESSION_DISABLED in text:
            raise VppApiError(f"cli {cmd!r}", FEATURE_DISABLED)
        return text

    # --- interfaces and memory ---------------------------------------------------------

    def interfaces(self) -> list[Interface]:
        """Interfaces with their IPv4 VRF and IPv4/IPv6 addresses (sw_interface_dump,
        sw_interface_get_table, ip_address_dump): find a pod's interface by its IP."""
        result = []
        for d in self._conn.call("sw_interface_dump", sw_if_index=NO_INDEX):
            index = int(d.sw_if_index)
            vrf = self._conn.checked("sw_interface_get_table", sw_if_index=index, is_ipv6=False)
            addresses = [
                InterfaceAddress(str(a.prefix.ip), int(a.prefix.network.prefixlen))
                for is_ipv6 in (False, True)
                for a in self._conn.call("ip_address_dump", sw_if_index=index, is_ipv6=is_ipv6)
            ]
            result.append(
                Interface(
                    index=index,
                    name=str(d.interface_name),
                    admin_up=bool(int(d.flags) & IF_ADMIN_UP),
                    link_up=bool(int(d.flags) & IF_LINK_UP),
                    vrf=int(vrf.vrf_id),
                    addresses=tuple(addresses),
                    tag=str(d.tag),
                )
            )
        return result

    # --- per-pod interfaces (mode local) ----------------------------------------------

    def ensure_vrf(self, table_id: int, name: str) -> None:
        """IPv4 and IPv6 table `table_id` (ip_table_add_del_v2; adding one that exists is
        a no-op returning 0 in VPP 26.06)."""
        check_uint(table_id, 32, "table_id")
        _check_label("name", name)
        for is_ip6 in (False, True):
            table = {"table_id": table_id, "is_ip6": is_ip6, "name": name}
            self._conn.checked("ip_table_add_del_v2", is_add=True, table=table)

    def add_pod_interface(self, tag: str, addresses: Sequence[str], vrf: int) -> int:
        """A loopback in table `vrf` carrying `addresses` (each as a host route: /32,
        /128), admin up, tagged `tag` so that it can be found again; returns its index.
        All or nothing: a failure deletes the loopback before raising (VPP 26.06: an
        address another interface has is -105 for IPv4, -127 for IPv6)."""
        _check_label("tag", tag)
        check_uint(vrf, 32, "vrf")
        prefixes = []
        for address in addresses:
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                raise VppInputError("addresses", address, "is not an IP address") from None
            prefixes.append(ipaddress.ip_interface(f"{ip}/{ip.max_prefixlen}"))
        r = self._conn.checked(
            "create_loopback_instance", mac_address="00:00:00:00:00:00", is_specified=False,
            user_instance=0,
        )  # fmt: skip
        index = int(r.sw_if_index)
        try:
            self._conn.checked("sw_interface_tag_add_del", is_add=True, sw_if_index=index, tag=tag)
            for is_ipv6 in (False, True):  # before the addresses: -114 after them
                self._conn.checked(
                    "sw_interface_set_table", sw_if_index=index, is_ipv6=is_ipv6, vrf_id=vrf
                )
            for prefix in prefixes:
                self._conn.checked(
                    "sw_interface_add_del_address", sw_if_index=index, is_add=True,
                    del_all=False, prefix=prefix,
                )  # fmt: skip
            self._conn.checked("sw_interface_set_flags", sw_if_index=index, flags=IF_ADMIN_UP)
        except VppError:
            with contextlib.suppress(VppError):
                self._conn.checked("delete_loopback", sw_if_index=index)
            raise
        return index

    def del_interface(self, sw_if_index: int, *, missing_ok: bool = False) -> None:
        """Delete a loopback made by add_pod_interface (-2 when there is none: raised
        unless missing_ok)."""
        check_uint(sw_if_index, 32, "sw_if_index")
        try:
            self._conn.checked("delete_loopback", sw_if_index=sw_if_index)
        except VppApiError as e:
            if not (missing_ok and e.retval == INVALID_SW_IF_INDEX):
                raise

    def memory(self) -> MainHeap:
        """Main heap usage from `show memory main-heap` (see cli_text.parse_main_heap:
        the format is taken from VPP's source, no capture exists). Check `available`
        before adding namespaces: each takes ~7 MB with default session tables, and
        VPP aborts when the heap is exhausted."""
        return cli_text.parse_main_heap(self.cli("show memory main-heap"))


def _check_label(field: str, value: str) -> None:
    """A table name or interface tag: VPP keeps 64 bytes of it, NUL included."""
    if not value or len(value) > 63 or not value.isprintable():
        raise VppInputError(field, value, "must be 1-63 printable characters")


def _conforms_to_protocol(vpp: Vpp) -> VppClient:
    # Never called: makes mypy check that Vpp implements the VppClient protocol.
    return vpp


def connect_with_backoff(
    api_socket: str = DEFAULT_API_SOCKET,
    api_dir: str | os.PathLike[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    *,
    backoff: Backoff | None = None,
    name: str = "vppctl-py",
) -> Vpp:
    """Vpp.connect(), retried with backoff while VPP is unreachable (not on definition
    or version errors, which retrying cannot fix)."""
    return retry(
        lambda: Vpp.connect(api_socket, api_dir, timeout, name=name),
        backoff or Backoff(),
        retry_on=(VppConnectError,),
    )
