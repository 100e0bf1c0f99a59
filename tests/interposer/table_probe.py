"""Run under the interposer: for each line "tcp|udp HOST PORT" on stdin, connect (or send
one datagram) a new socket there and print the path it took, one line each (1 kernel,
2 vcl). Runs until stdin ends, so a test can change the endpoint table between lines."""

from __future__ import annotations

import ctypes
import socket
import sys


def main() -> None:
    path_of = ctypes.CDLL(None).vcl_dualstack_path
    for line in sys.stdin:
        kind, host, port = line.split()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock_type = socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM
        with socket.socket(family, sock_type) as s:
            s.settimeout(5)
            try:
                if kind == "udp":
                    s.sendto(b"x", (host, int(port)))
                else:
                    s.connect((host, int(port)))
            except OSError:
                pass  # the path is decided either way
            print(path_of(s.fileno()), flush=True)


if __name__ == "__main__":
    main()
