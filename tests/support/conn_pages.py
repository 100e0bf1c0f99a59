"""A process's connection-count page as the interposer makes it (patches/src/ds_conns.c):
a sealed 4 KiB memfd holding "VCLCONN1", then open and total counts (vpp, kernel,
loopback) as little-endian 64-bit integers; arguments make it wrong in one way."""

from __future__ import annotations

import fcntl
import os

from injector.agent.reports import PAGE_SIZE

SEALS = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL


def conn_page(open_: tuple[int, int, int] = (1, 2, 3), total: tuple[int, int, int] = (4, 5, 6),
              *, seal: int = SEALS, size: int = PAGE_SIZE, magic: bytes = b"VCLCONN1") -> int:  # fmt: skip
    fd = os.memfd_create("vcl-conns", os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, size)
    body = magic + b"".join(n.to_bytes(8, "little") for n in (*open_, *total))
    os.pwrite(fd, body[:size], 0)
    if seal:
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seal)
    return fd
