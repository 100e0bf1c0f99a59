"""vppctl_py: typed VPP client over vpp-papi (the project's only door to VPP)."""

from vppctl_py.backoff import Backoff
from vppctl_py.client import Vpp, connect_with_backoff
from vppctl_py.connection import DEFAULT_API_SOCKET
from vppctl_py.errors import (
    CliTextError,
    CrcMismatch,
    VppApiDefinitionsError,
    VppApiError,
    VppCliError,
    VppConnectError,
    VppDisconnected,
    VppError,
    VppInputError,
    VppTimeout,
    VppUnsupportedRelease,
    VppVersionMismatch,
)
from vppctl_py.models import (
    App,
    AppNamespace,
    AppWorker,
    Interface,
    InterfaceAddress,
    MainHeap,
    Ping,
    Session,
    Version,
    interface_with_address,
)
from vppctl_py.protocol import VppClient

__all__ = [
    "DEFAULT_API_SOCKET",
    "App",
    "AppNamespace",
    "AppWorker",
    "Backoff",
    "CliTextError",
    "CrcMismatch",
    "Interface",
    "InterfaceAddress",
    "MainHeap",
    "Ping",
    "Session",
    "Version",
    "Vpp",
    "VppApiDefinitionsError",
    "VppApiError",
    "VppCliError",
    "VppClient",
    "VppConnectError",
    "VppDisconnected",
    "VppError",
    "VppInputError",
    "VppTimeout",
    "VppUnsupportedRelease",
    "VppVersionMismatch",
    "connect_with_backoff",
    "interface_with_address",
]
