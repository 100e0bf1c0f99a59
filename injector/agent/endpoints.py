"""The node's VCL endpoint table (network mode `local`): which (address, port, protocol)
VPP can serve on this node, published to every injected pod of the node so that the
interposer sends a connection to VPP only when VPP can serve it (patches/src/
ds_endpoints.c reads it; its header comment and this module describe one format).

Format (version 1), little-endian header, then the entries sorted by their bytes:
magic "VCLEPT1\\0", u32 version, u32 count, u64 generation, u32 entry size (20), u32
FNV-1a 32 of the entries; an entry is u8 family (4/6), u8 protocol (6 TCP, 17 UDP), u16
port (network order), 16 address bytes (IPv4: 4, then zeros).

Publishing: the table is written once under the agent's root, then hard-linked into each
pod's directory as a temporary name and renamed over ``endpoints``: every pod sees the
new table at once (one inode), the interposer notices the new inode at its next connect,
and a reader never sees a half-written file.
"""

from __future__ import annotations

import ipaddress
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ENDPOINTS_NAME = "endpoints"  # in each pod's directory; the env file names it
MAGIC = b"VCLEPT1\0"
VERSION = 1
ENTRY_SIZE = 20
HEADER = struct.Struct("<8sIIQII")
TCP, UDP = 6, 17

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TableError(ValueError):
    """A table that is not one this module writes."""


@dataclass(frozen=True)
class Endpoint:
    address: IPAddress
    port: int
    protocol: int = TCP

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"port {self.port} is not 1-65535")
        if self.protocol not in (TCP, UDP):
            raise ValueError(f"protocol {self.protocol} is not TCP (6) or UDP (17)")
        if isinstance(self.address, ipaddress.IPv6Address) and self.address.ipv4_mapped:
            raise ValueError(f"{self.address} is v4-mapped: list {self.address.ipv4_mapped}")

    def key(self) -> bytes:
        family = 4 if self.address.version == 4 else 6
        return (
            bytes((family, self.protocol))
            + struct.pack("!H", self.port)
            + (self.address.packed.ljust(16, b"\0"))
        )

    def __str__(self) -> str:
        proto = "tcp" if self.protocol == TCP else "udp"
        host = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return f"{host}:{self.port}/{proto}"


def fnv1a(data: bytes) -> int:
    """The entries' checksum (FNV-1a, 32 bits)."""
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def encode(endpoints: Iterable[Endpoint], generation: int) -> bytes:
    keys = sorted({e.key() for e in endpoints})
    body = b"".join(keys)
    return HEADER.pack(MAGIC, VERSION, len(keys), generation, ENTRY_SIZE, fnv1a(body)) + body


def decode(data: bytes) -> tuple[int, list[Endpoint]]:
    """(generation, endpoints) of a table; TableError says what is wrong with it."""
    if len(data) < HEADER.size:
        raise TableError("shorter than its header")
    magic, version, count, generation, size, checksum = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise TableError("not an endpoint table")
    if version != VERSION or size != ENTRY_SIZE:
        raise TableError(f"version {version}, entry size {size}: not version 1")
    body = data[HEADER.size :]
    if len(body) != count * ENTRY_SIZE:
        raise TableError(f"{len(body)} bytes of entries for a count of {count}")
    if fnv1a(body) != checksum:
        raise TableError("checksum mismatch")
    found = []
    for i in range(count):
        raw = body[i * ENTRY_SIZE : (i + 1) * ENTRY_SIZE]
        family, proto, port = raw[0], raw[1], struct.unpack("!H", raw[2:4])[0]
        if family not in (4, 6):
            raise TableError(f"entry {i}: family {family}")
        addr: IPAddress = (
            ipaddress.IPv4Address(raw[4:8]) if family == 4 else ipaddress.IPv6Address(raw[4:20])
        )
        try:
            found.append(Endpoint(addr, port, proto))
        except ValueError as e:
            raise TableError(f"entry {i}: {e}") from None
    return generation, found


def publish(data: bytes, root: Path, pod_dirs: Iterable[Path]) -> list[Path]:
    """The table into every pod directory given (atomically each); returns the directories
    it could not reach (a pod deleted meanwhile), which the caller may ignore."""
    root.mkdir(parents=True, exist_ok=True)
    staged = root / f".{ENDPOINTS_NAME}.{os.getpid()}"
    with open(staged, "wb") as f:
        f.write(data)
    os.chmod(staged, 0o644)  # node-wide facts, the same for every pod: no secret
    missed = []
    try:
        for d in pod_dirs:
            tmp = d / f".{ENDPOINTS_NAME}.new"
            try:
                tmp.unlink(missing_ok=True)
                os.link(staged, tmp)
                os.replace(tmp, d / ENDPOINTS_NAME)
            except OSError:
                missed.append(d)
    finally:
        staged.unlink(missing_ok=True)
    return missed
