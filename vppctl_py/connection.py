"""The one place that drives vpp_papi: load definitions (from VPP itself, or an API
directory), connect, check CRCs against the supported releases, call, tear down."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vppctl_py.errors import (
    CrcMismatch,
    VppApiDefinitionsError,
    VppApiError,
    VppConnectError,
    VppDisconnected,
    VppTimeout,
    VppVersionMismatch,
)
from vppctl_py.releases import match_release

DEFAULT_API_SOCKET = "/run/vpp/api.sock"
DEFAULT_TIMEOUT = 5.0
# Every request the client sends; their replies are checked through the service table.
USED_MESSAGES = (
    "show_version",
    "cli_inband",
    "control_ping",
    "session_enable_disable_v2",
    "app_namespace_add_del_v4",
    "app_namespace_add_del_v3",
    "sw_interface_dump",
    "sw_interface_get_table",
    "ip_address_dump",
    "ip_table_add_del_v2",
    "create_loopback_instance",
    "delete_loopback",
    "sw_interface_tag_add_del",
    "sw_interface_set_table",
    "sw_interface_add_del_address",
    "sw_interface_set_flags",
)
# How papi learns the definitions from VPP itself (memclnt.api, bundled with vpp-papi).
BOOTSTRAP_MESSAGE = "get_api_json"


def resolve_api_dir(api_dir: str | os.PathLike[str] | None) -> Path | None:
    """An API definitions directory to load instead of asking VPP: the argument, else
    $VPP_API_DIR; None (the default) means "load them from the running VPP"."""
    chosen = api_dir or os.environ.get("VPP_API_DIR")
    if not chosen:
        return None
    path = Path(chosen)
    if not path.is_dir():
        raise VppApiDefinitionsError(
            f"VPP API definitions not found: {path} is not a directory "
            "(unset VPP_API_DIR / --api-dir to load them from the running VPP)"
        )
    if not any(path.rglob("*.api.json")):
        raise VppApiDefinitionsError(f"VPP API definitions not found: no *.api.json under {path}")
    return path


@dataclass
class PapiConnection:
    """A connected vpp-papi client. Once broken it stays broken: calls raise at once."""

    papi: Any
    api_socket: str
    broken: str | None = None
    release: str = ""  # the supported VPP release whose messages this VPP speaks
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(
        cls, api_socket: str, api_dir: Path | None, timeout: float, name: str
    ) -> PapiConnection:
        """Connect, loading the definitions from `api_dir` or, when None, from VPP
        (get_api_json); then check them and VPP's CRCs against the supported releases."""
        papi = _client(api_socket, api_dir, timeout)
        source = str(api_dir) if api_dir else f"the VPP at {api_socket}"
        try:
            papi.connect(name)
        except OSError as e:  # includes TimeoutError: no handshake reply
            _close_socket(papi)
            raise VppConnectError(api_socket, _describe(e)) from None
        except Exception as e:  # papi fails on a closed handshake with TypeError & co.
            bootstrap_failed = api_dir is None and papi.transport.connected
            _abandon_transport(papi)
            if bootstrap_failed:
                raise VppApiDefinitionsError(_no_bootstrap(api_socket, papi, e)) from None
            raise VppConnectError(api_socket, f"handshake failed: {e!r}") from None
        conn = cls(papi, api_socket)
        try:
            conn.release = conn._check(source)
        except VppApiDefinitionsError:
            conn.close()
            raise
        return conn

    def _check(self, source: str) -> str:
        # VPP's own message table against the supported releases first: that names
        # what a VPP of another release changed, whichever definitions we loaded.
        table: dict[str, int] = self.papi.transport.message_table
        release = match_release(table, self._version()).name
        # Then the definitions we loaded (only an --api-dir can differ from VPP's).
        missing = [m for m in USED_MESSAGES if m not in self.papi.messages]
        if missing:
            raise VppApiDefinitionsError(
                f"VPP API definitions from {source} lack: {', '.join(missing)}"
            )
        mismatches = self.crc_mismatches(USED_MESSAGES)
        if mismatches:
            raise VppVersionMismatch(mismatches)
        return release

    def _version(self) -> str:
        """VPP's own version string, for error messages (best effort)."""
        try:
            return str(self.papi.api.show_version().version)
        except Exception:  # a VPP whose show_version we cannot even call
            return "(version unknown)"

    def crc_mismatches(self, requests: Iterable[str]) -> tuple[CrcMismatch, ...]:
        """Messages (requests and their replies) whose CRC the running VPP does not know."""
        table: dict[str, int] = self.papi.transport.message_table
        by_name = {key.rpartition("_")[0]: key.rpartition("_")[2] for key in table}
        result = []
        for request in requests:
            service = self.papi.services.get(request, {})
            for name in (request, service.get("reply"), service.get("stream_msg")):
                if not name:
                    continue
                ours = self.papi.messages[name].crc[2:]
                if f"{name}_{ours}" not in table:
                    vpp = by_name.get(name)
                    result.append(CrcMismatch(name, f"0x{ours}", f"0x{vpp}" if vpp else None))
        return tuple(result)

    def message_definitions(self) -> dict[str, list[object]]:
        """papi's msgdef lists, for reading field sizes."""
        return {name: msg.msgdef for name, msg in self.papi.messages.items()}

    def call(self, name: str, **fields: object) -> Any:
        """Send one request and return papi's reply (a list for dumps); raise
        VppDisconnected/VppTimeout when the connection fails. Retvals are not checked."""
        from vpp_papi import VPPIOError

        with self.lock:
            if self.broken:
                raise VppDisconnected(self.broken)
            try:
                return getattr(self.papi.api, name)(**fields)
            except (VPPIOError, OSError) as e:
                raise self._break(name, e) from None

    def _break(self, name: str, error: Exception) -> VppDisconnected:
        thread = self.papi.transport.message_thread
        if thread is not None:
            # The reader thread ends when VPP closes the socket; give it a moment to.
            thread.join(timeout=0.2)
        if thread is not None and thread.is_alive():
            self.broken = f"no reply from VPP to {name} within the timeout ({error})"
            exc: VppDisconnected = VppTimeout(self.broken)
        else:
            self.broken = f"connection to VPP at {self.api_socket} broke during {name}"
            exc = VppDisconnected(self.broken)
        self._abandon()
        return exc

    def checked(self, name: str, **fields: object) -> Any:
        """call() and raise VppApiError when the reply's retval is not 0."""
        reply = self.call(name, **fields)
        if reply.retval != 0:
            raise VppApiError(name, reply.retval)
        return reply

    def close(self) -> None:
        """Say goodbye (sockclnt_delete) if the connection still works, then tear down."""
        with self.lock:
            if self.broken:
                return
            self.broken = "connection closed"
            try:
                self.papi.disconnect()
            except Exception:  # a dying VPP: the teardown below still runs
                self._abandon()

    def _abandon(self) -> None:
        _abandon_transport(self.papi)
        self.papi.transport.message_table = {}


def _client(api_socket: str, api_dir: Path | None, timeout: float) -> Any:
    from vpp_papi import VPPApiClient  # imported here: nothing at import time

    try:
        if api_dir is None:
            return VPPApiClient(
                bootstrapapi=True,
                use_socket=True,
                server_address=api_socket,
                read_timeout=timeout,
                async_thread=False,
            )
        return VPPApiClient(
            apidir=str(api_dir),
            use_socket=True,
            server_address=api_socket,
            read_timeout=timeout,
            async_thread=False,
        )
    except Exception as e:  # papi raises several unrelated types for bad definitions
        where = api_dir or "vpp-papi's bundled memclnt.api.json"
        raise VppApiDefinitionsError(f"cannot load VPP API definitions from {where}: {e}") from None


def _no_bootstrap(api_socket: str, papi: Any, error: Exception) -> str:
    table = getattr(papi.transport, "message_table", {}) or {}
    offered = sorted(k for k in table if k.rpartition("_")[0] == BOOTSTRAP_MESSAGE)
    ours = papi.messages[BOOTSTRAP_MESSAGE].crc if BOOTSTRAP_MESSAGE in papi.messages else "?"
    if not offered:
        why = f"it does not offer {BOOTSTRAP_MESSAGE} (older than the releases we support?)"
    elif f"{BOOTSTRAP_MESSAGE}_{ours[2:]}" not in table:
        why = f"it offers {', '.join(offered)}, vpp-papi speaks {BOOTSTRAP_MESSAGE} {ours}"
    else:
        why = f"{BOOTSTRAP_MESSAGE} failed: {error!r}"
    return (
        f"cannot load VPP's API definitions from the VPP at {api_socket}: {why}; "
        "point --api-dir / VPP_API_DIR at that VPP's *.api.json tree"
    )


def _abandon_transport(papi: Any) -> None:
    # papi's disconnect() would send sockclnt_delete and wait a full read timeout
    # for a reply that a dead VPP never sends; stop its reader thread directly.
    transport = papi.transport
    transport.connected = False
    _close_socket(papi)
    thread = transport.message_thread
    if thread is not None and thread.is_alive():  # a failed connect never started it
        transport.sque.put(True)
        thread.join(timeout=1.0)
    transport.message_thread = None


def _close_socket(papi: Any) -> None:
    sock = getattr(papi.transport, "socket", None)
    if sock is not None:
        sock.close()


def _describe(error: BaseException) -> str:
    if isinstance(error, FileNotFoundError):
        return "no such socket (is VPP running?)"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused (VPP is not listening on it)"
    if isinstance(error, PermissionError):
        return "permission denied"
    if isinstance(error, TimeoutError):
        return "no handshake reply (timed out)"
    return str(error) or type(error).__name__
