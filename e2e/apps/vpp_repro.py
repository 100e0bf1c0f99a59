"""Minimal reproducers of the VPP 26.06 faults in docs/vpp-issues.md, with stock LDP only
(no interposer of ours in the process): two pods (network namespaces with app namespaces
of their own, as lab.py makes them), Python programs under LD_PRELOAD=libvcl_ldpreload.so.

    python3 -m e2e.apps.vpp_repro half-close|shared-worker|attach-race \\
        [--ldp /opt/vpp/lib/x86_64-linux-gnu/libvcl_ldpreload.so] [--address 10.99.0.1]

Each prints what it saw and exits 1 when the fault showed, 0 when it did not. Needs root
and VPP's API socket (/run/vpp/api.sock) with an interface holding --address. A lab VPP
only: a few runs of shared-worker have crashed VPP 26.06 (docs/vpp-issues.md 1).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from e2e.apps.clients import ECHO_UNTIL_EOF, PY
from e2e.apps.lab import Node, Pod, stop
from vppctl_py.client import Vpp

HALF_CLOSE_CLIENT = """
import socket, sys
c = socket.create_connection((sys.argv[1], 7100), timeout=5)
c.sendall(b"request"); c.shutdown(socket.SHUT_WR)
try:
    print("reply:", c.recv(64))
except socket.timeout:
    print("no reply in 5 s: the server never saw EOF")
"""

ECHO = """
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7101)); s.listen(64)
def serve(c):
    while data := c.recv(4096):
        c.sendall(data)
while True:
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()
"""

# Two threads, each with an epoll of its own and connections of its own, registered with
# their fds as data: any event naming another thread's fd came from the shared worker.
TWO_EPOLL_THREADS = """
import select, socket, sys, threading
foreign = []
def run(n):
    conns = [socket.create_connection((sys.argv[1], 7101)) for _ in range(4)]
    mine = {c.fileno(): c for c in conns}
    ep = select.epoll()
    for c in conns:
        c.setblocking(False); ep.register(c.fileno(), select.EPOLLIN)
    for i in range(300):
        for c in conns:
            c.send(b"x")
        got = 0
        while got < len(conns):
            for fd, _ in ep.poll(1):
                if fd not in mine:
                    foreign.append(fd); continue
                got += len(mine[fd].recv(64))
            if foreign:
                return
threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
[t.start() for t in threads]; [t.join(20) for t in threads]
print(f"{len(foreign)} events for another thread's sockets" if foreign else "no foreign events")
"""


def _client_of(srv: Pod, cli: Pod, env: dict[str, str], server: list[str], client: str) -> str:
    """Runs `server` in srv, then `client` against it from cli; what the client printed."""
    proc = srv.start([PY, "-c", *server], vcl=False, extra=env)
    try:
        time.sleep(1)
        out = cli.run([PY, "-c", client, srv.address(True)], vcl=False, extra=env)
    finally:
        stop(proc)
    print(out.stdout.strip() or out.stderr[-300:])
    return out.stdout


def half_close(srv: Pod, cli: Pod, env: dict[str, str]) -> bool:
    return "never saw EOF" in _client_of(srv, cli, env, [ECHO_UNTIL_EOF, "7100"], HALF_CLOSE_CLIENT)


def shared_worker(srv: Pod, cli: Pod, env: dict[str, str]) -> bool:
    return "another thread's" in _client_of(srv, cli, env, [ECHO], TWO_EPOLL_THREADS)


def attach_race(srv: Pod, cli: Pod, env: dict[str, str]) -> bool:
    client = "import socket, sys; socket.create_connection((sys.argv[1], 7101)).close()"
    server = srv.start([PY, "-c", ECHO], vcl=False, extra=env)
    try:
        time.sleep(1)
        with ThreadPoolExecutor(8) as pool:
            runs = list(pool.map(lambda _: cli.run([PY, "-c", client, srv.address(True)],
                                                   vcl=False, extra=env), range(96)))  # fmt: skip
    finally:
        stop(server)
    refused = [r for r in runs if re.search("app already attached", r.stderr)]
    print(f"{len(refused)} of {len(runs)} processes: 'attach failed: app already attached'")
    return bool(refused)


CASES: dict[str, Callable[[Pod, Pod, dict[str, str]], bool]] = {
    "half-close": half_close,
    "shared-worker": shared_worker,
    "attach-race": attach_race,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("--ldp", default="/opt/vpp/lib/x86_64-linux-gnu/libvcl_ldpreload.so")
    parser.add_argument("--address", default="10.99.0.1")
    parser.add_argument("--api-socket", default="/run/vpp/api.sock")
    args = parser.parse_args(argv)
    vpp = Vpp.connect(args.api_socket, name="vpp-repro")
    index = next(
        i.index for i in vpp.interfaces() for a in i.addresses if a.address == args.address
    )
    with Node.up(vpp, index, args.address, args.ldp) as node:
        srv, cli = node.pod("repro-srv"), node.pod("repro-cli")
        # stock LDP alone, one shared worker (VCL's default), as documented upstream
        env = {"LD_PRELOAD": args.ldp, "LDP_SID_BIT": "20"}
        for pod in (srv, cli):
            text = (pod.directory / "vcl.conf").read_text().replace("  multi-thread-workers\n", "")
            (pod.directory / "plain.conf").write_text(text)
        env_srv = {**env, "VCL_CONFIG": str(srv.directory / "plain.conf"), **_ns(srv)}
        env_cli = {**env, "VCL_CONFIG": str(cli.directory / "plain.conf"), **_ns(cli)}
        showed = CASES[args.case](_Env(srv, env_srv), _Env(cli, env_cli), {})
    vpp.close()
    print("the fault showed" if showed else "the fault did not show")
    return 1 if showed else 0


def _ns(pod: Pod) -> dict[str, str]:
    lines = (pod.directory / "vcl.env").read_text().split()
    return dict(line.split("=", 1) for line in lines)


class _Env(Pod):
    """A pod whose programs always get its stock-LDP environment."""

    def __init__(self, pod: Pod, env: dict[str, str]) -> None:
        self.__dict__.update(pod.__dict__)
        self._stock = env

    def env(self, container: str, vcl: bool, extra: dict[str, str] | None) -> dict[str, str]:  # type: ignore[override]
        return super().env(container, False, {**self._stock, **(extra or {})})


if __name__ == "__main__":
    sys.exit(main())
