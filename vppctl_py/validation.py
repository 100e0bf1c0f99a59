"""Checks on namespace ids, socket names and netns names before they are sent to VPP.

VPP 26.06 does not validate `sock_name`: one it cannot bind leaves a half-made namespace
behind (add returns -1), and deleting that namespace dereferences a null function pointer
in appns_sapi_del_ns_socket (SIGSEGV). So nothing reaches VPP unless it passes here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from vppctl_py.errors import VppApiDefinitionsError, VppInputError

# Conservative on purpose: what pod-derived ids and our socket paths use, nothing that a
# shell, VPP's unformat or a CLI table could misread.
ID_CHARSET = re.compile(r"[A-Za-z0-9._-]+")
PATH_CHARSET = re.compile(r"[A-Za-z0-9._/-]+")
ABSTRACT_PREFIX = "abstract:"
# sockaddr_un.sun_path is 108 bytes: 107 for a path plus its NUL, and for an abstract
# name the leading NUL takes the place of the terminator.
SUN_PATH_MAX = 107
# VPP's own built-in namespace (index 0): never ours to add or delete.
DEFAULT_NS_ID = "default"
U64_MAX = (1 << 64) - 1
U32_MAX = (1 << 32) - 1


@dataclass(frozen=True)
class FieldLimits:
    """Byte limits of the fixed-size string fields, read from the API definitions."""

    namespace_id: int  # longest id, in bytes (the field keeps one byte for the NUL)
    netns: int

    @classmethod
    def from_msgdefs(cls, msgdefs: Mapping[str, Sequence[object]]) -> FieldLimits:
        """Read `string namespace_id[N]` and `string netns[N]` from the message
        definitions (papi's `msgdef` lists: [type, name, length?, ...])."""
        return cls(
            namespace_id=_string_size(msgdefs, "app_namespace_add_del_v4", "namespace_id") - 1,
            netns=_string_size(msgdefs, "app_namespace_add_del_v3", "netns") - 1,
        )


def _string_size(msgdefs: Mapping[str, Sequence[object]], msg: str, field: str) -> int:
    for entry in msgdefs.get(msg, ()):
        if isinstance(entry, list) and entry[:2] == ["string", field] and len(entry) > 2:
            size = entry[2]
            if isinstance(size, int) and size > 0:
                return size
    raise VppApiDefinitionsError(f"API definitions lack a fixed-size {msg}.{field}")


def check_ns_id(ns_id: str, limits: FieldLimits, *, field: str = "ns_id") -> None:
    """An app namespace id: 1..N bytes of [A-Za-z0-9._-], not VPP's `default`."""
    if not ns_id:
        raise VppInputError(field, ns_id, "must not be empty")
    size = len(ns_id.encode())
    if size > limits.namespace_id:
        raise VppInputError(
            field,
            ns_id,
            f"is {size} bytes; VPP's namespace_id field holds at most {limits.namespace_id}",
        )
    if not ID_CHARSET.fullmatch(ns_id):
        raise VppInputError(field, ns_id, "may contain only letters, digits, '.', '_' and '-'")
    if ns_id == DEFAULT_NS_ID:
        raise VppInputError(field, ns_id, "is VPP's built-in namespace and cannot be changed")


def check_sock_name(sock_name: str, *, field: str = "sock_name") -> None:
    """An absolute socket path or `abstract:NAME`, short enough for sockaddr_un."""
    if sock_name.startswith(ABSTRACT_PREFIX):
        name = sock_name[len(ABSTRACT_PREFIX) :]
        if not name:
            raise VppInputError(field, sock_name, "abstract socket name must not be empty")
        if not ID_CHARSET.fullmatch(name):
            raise VppInputError(
                field, sock_name, "abstract name may contain only letters, digits, '.', '_', '-'"
            )
        _check_sun_path(sock_name, len(name.encode()), field)
        return
    if not sock_name.startswith("/"):
        raise VppInputError(field, sock_name, "must be an absolute path or 'abstract:NAME'")
    if not PATH_CHARSET.fullmatch(sock_name):
        raise VppInputError(
            field, sock_name, "path may contain only letters, digits, '.', '_', '-' and '/'"
        )
    parts = sock_name.split("/")[1:]
    if any(part in ("", ".", "..") for part in parts):
        raise VppInputError(field, sock_name, "path must be normal: no '//', '.' or '..'")
    _check_sun_path(sock_name, len(sock_name.encode()), field)


def _check_sun_path(sock_name: str, size: int, field: str) -> None:
    if size > SUN_PATH_MAX:
        raise VppInputError(
            field, sock_name, f"is {size} bytes; a unix socket name holds at most {SUN_PATH_MAX}"
        )


def check_netns(netns: str, limits: FieldLimits, *, field: str = "netns") -> None:
    """A network namespace name or path: 1..N bytes of [A-Za-z0-9._/-]."""
    size = len(netns.encode())
    if not netns or size > limits.netns:
        raise VppInputError(field, netns, f"must be 1 to {limits.netns} bytes")
    if not PATH_CHARSET.fullmatch(netns):
        raise VppInputError(field, netns, "may contain only letters, digits, '.', '_', '-' and '/'")


def check_uint(value: int, bits: int, field: str) -> None:
    """An unsigned integer field of the given width."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise VppInputError(field, value, f"must be an integer from 0 to {(1 << bits) - 1}")
