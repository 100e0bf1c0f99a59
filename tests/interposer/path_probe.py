"""Run under the interposer: name each address, print the path each socket took (JSON list).

Usage: path_probe.py udp|tcp-listen HOST:PORT...  (HOST may be an IPv6 address in brackets).
For udp the socket sends one datagram there (nothing needs to listen); for tcp-listen it binds and listens.
Paths: -1 not a socket of ours, 0 pending, 1 kernel, 2 vcl, 3 both.
"""

from __future__ import annotations

import ctypes
import json
import socket
import sys


def parse(target: str) -> tuple[int, str, int]:
    host, _, port = target.rpartition(":")
    if host.startswith("["):
        return socket.AF_INET6, host[1:-1], int(port)
    return socket.AF_INET, host, int(port)


def main() -> None:
    path_of = ctypes.CDLL(None).vcl_dualstack_path
    mode, targets = sys.argv[1], sys.argv[2:]
    paths = []
    for target in targets:
        family, host, port = parse(target)
        kind = socket.SOCK_DGRAM if mode == "udp" else socket.SOCK_STREAM
        with socket.socket(family, kind) as s:
            if mode == "udp":
                s.sendto(b"x", (host, port))
            else:
                s.bind((host, port))
                s.listen(1)
            paths.append(path_of(s.fileno()))
    print(json.dumps(paths))


if __name__ == "__main__":
    main()
