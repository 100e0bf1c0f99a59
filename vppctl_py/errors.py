"""Typed exceptions raised by vppctl_py, and the names of VPP's API return values."""

from __future__ import annotations

from dataclasses import dataclass

# VPP's api_errno table (src/vnet/error.h, VPP 26.06) for the values our messages return,
# plus the session layer's own codes that leak through raw. VPP 26.06's session API
# returns SESSION_E_INVALID (-19) unchanged, where the api_errno table would read it as
# SYSCALL_ERROR_9 ("System call error #9"): we name it for what it really is.
RETVAL_NAMES: dict[int, str] = {
    -1: "UNSPECIFIED",
    -2: "INVALID_SW_IF_INDEX",
    -3: "NO_SUCH_FIB",
    -6: "NO_SUCH_ENTRY",
    -7: "INVALID_VALUE",
    -19: "SESSION_E_INVALID",
    -30: "FEATURE_DISABLED",
    -31: "INVALID_REGISTRATION",
    -73: "INVALID_ARGUMENT",
    -165: "EAGAIN",
}


def retval_name(retval: int) -> str:
    """VPP's name for an API return value, or `RETVAL_<n>` when we do not know it."""
    return RETVAL_NAMES.get(retval, f"RETVAL_{retval}")


class VppError(Exception):
    """Base class of everything vppctl_py raises."""


class VppConnectError(VppError):
    """The API socket could not be reached: missing, refused, or no handshake."""

    def __init__(self, api_socket: str, reason: str) -> None:
        super().__init__(f"cannot connect to VPP at {api_socket}: {reason}")
        self.api_socket = api_socket
        self.reason = reason


class VppApiDefinitionsError(VppError):
    """The API definitions (*.api.json) are missing or lack a message we need."""


@dataclass(frozen=True)
class CrcMismatch:
    """One message whose definition differs between our API files and the running VPP."""

    message: str
    ours: str
    vpp: str | None  # None: the running VPP does not know the message at all


class VppVersionMismatch(VppApiDefinitionsError):
    """The running VPP was built from other API definitions than the ones we loaded."""

    def __init__(self, mismatches: tuple[CrcMismatch, ...]) -> None:
        parts = [
            f"{m.message} (ours {m.ours}, VPP {m.vpp or 'has no such message'})" for m in mismatches
        ]
        super().__init__("VPP API definitions differ from the running VPP: " + "; ".join(parts))
        self.mismatches = mismatches


class VppUnsupportedRelease(VppApiDefinitionsError):
    """The running VPP speaks messages whose definitions differ from every VPP release
    vppctl_py was recorded against: our code may misread or mis-send them."""

    def __init__(
        self,
        vpp_version: str,
        closest: str,
        mismatches: tuple[CrcMismatch, ...],
        supported: tuple[str, ...],
    ) -> None:
        parts = [
            f"{m.message} ({closest} {m.ours}, this VPP {m.vpp or 'has no such message'})"
            for m in mismatches
        ]
        super().__init__(
            f"VPP {vpp_version} is not a release vppctl_py supports "
            f"({', '.join(supported) or 'none recorded'}); messages that differ from "
            f"{closest}: " + "; ".join(parts)
        )
        self.vpp_version = vpp_version
        self.closest = closest
        self.mismatches = mismatches
        self.supported = supported


class VppApiError(VppError):
    """VPP answered a request with a non-zero retval."""

    def __init__(self, message: str, retval: int, name: str | None = None) -> None:
        self.message = message
        self.retval = retval
        self.name = name or retval_name(retval)
        super().__init__(f"{message}: VPP returned {retval} ({self.name})")


class VppCliError(VppApiError):
    """A CLI command (cli_inband) failed; `output` is VPP's error text."""

    def __init__(self, command: str, retval: int, output: str) -> None:
        super().__init__("cli_inband", retval)
        self.command = command
        self.output = output
        self.args = (f"cli {command!r} failed ({retval}): {output.strip()}",)


class VppDisconnected(VppError):
    """The connection to VPP broke (VPP restarted or crashed, or the socket closed).

    Every later call on the same client raises it again at once. Callers resync: open a
    new connection (`Vpp.reconnect()` or `connect_with_backoff()`) and re-read VPP's state,
    because a restarted VPP has forgotten every namespace and app.
    """


class VppTimeout(VppDisconnected):
    """VPP sent no reply in time. The connection is abandoned like a broken one."""


class VppInputError(VppError, ValueError):
    """A value was refused before anything was sent to VPP; names the field and the rule."""

    def __init__(self, field: str, value: object, rule: str) -> None:
        super().__init__(f"{field}={value!r}: {rule}")
        self.field = field
        self.value = value
        self.rule = rule


class CliTextError(VppError, ValueError):
    """CLI output did not have the shape the parser expects (another VPP version?)."""
