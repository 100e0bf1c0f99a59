"""Dataplane benchmark (needs a real VPP): request/response latency through VCL, wired as
the injector wires a pod (interposer + lazy LDP + the agent's vcl.conf), against the
kernel, at 1, 16, 64 and 256 connections; and the idle CPU of an epoll app with and
without use-mq-eventfd. Prints one table. The published claim to check: P90 -30-35% at
>= 64 connections.

    VPP_API_SOCKET=/run/vpp/api.sock VPP_LDP_LIB=/usr/lib/x86_64-linux-gnu/libvcl_ldpreload.so \\
      python3 e2e/bench/dataplane.py --interface loop0 [--seconds 10]
    python3 e2e/bench/dataplane.py --kernel-only      # the harness alone, no VPP

The VCL run creates a throwaway app namespace bound to --interface (app-scope-local, so
client and server meet in VPP's cut-through), and connects to that interface's address:
loopback would stay on the kernel by the dual-stack rules.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAYLOAD = 64

SERVER = """
import asyncio, sys
PAYLOAD = int(sys.argv[2])
async def echo(r, w):
    try:
        while data := await r.readexactly(PAYLOAD):
            w.write(data); await w.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
async def main():
    srv = await asyncio.start_server(echo, "0.0.0.0", int(sys.argv[1]), backlog=1024)
    print("ready", flush=True)
    async with srv: await srv.serve_forever()
asyncio.run(main())
"""

CLIENT = """
import asyncio, json, sys, time
PAYLOAD = int(sys.argv[5])
host, port, conns, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
lat = []
async def one(stop):
    r, w = await asyncio.open_connection(host, port)
    msg = b"x" * PAYLOAD
    while time.monotonic() < stop:
        t = time.perf_counter(); w.write(msg); await w.drain(); await r.readexactly(len(msg))
        lat.append(time.perf_counter() - t)
    w.close()
async def main():
    stop = time.monotonic() + seconds
    await asyncio.gather(*(one(stop) for _ in range(conns)))
asyncio.run(main())
print(json.dumps(lat))
"""


def percentile(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] * 1e6


@contextlib.contextmanager
def echo_server(env: dict[str, str], port: int) -> Iterator[subprocess.Popen[str]]:
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port), str(PAYLOAD)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout and server.stdout.readline().strip() == "ready", "server did not start"
        yield server
    finally:
        server.terminate()
        server.wait(timeout=10)


def run_pair(env: dict[str, str], host: str, port: int, conns: int, seconds: float) -> list[float]:
    """Latencies of one run; empty (and the client's last error line printed) on failure."""
    with echo_server(env, port):
        out = subprocess.run(
            [sys.executable, "-c", CLIENT, host, str(port), str(conns), str(seconds), str(PAYLOAD)],
            env=env, capture_output=True, text=True, timeout=seconds * 4 + 60,
        )  # fmt: skip
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"client with {conns} connections to {host} failed: {last}", file=sys.stderr)
        return []
    return list(json.loads(out.stdout))


def idle_cpu(env: dict[str, str], port: int, seconds: float) -> float:
    """Percent of one core used by an idle epoll (asyncio) server."""
    with echo_server(env, port) as server:

        def ticks() -> int:
            fields = Path(f"/proc/{server.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])

        start, t0 = ticks(), time.monotonic()
        time.sleep(seconds)
        used = (ticks() - start) / os.sysconf("SC_CLK_TCK")
        return 100 * used / (time.monotonic() - t0)


def vcl_env(
    workdir: Path, eventfd: bool, args: argparse.Namespace
) -> tuple[dict[str, str], str, object]:
    sys.path.insert(0, str(REPO))
    from injector.core.render import VclConfParams, render_vcl_conf
    from vppctl_py import Vpp

    vpp = Vpp.connect(os.environ["VPP_API_SOCKET"])
    iface = next(i for i in vpp.interfaces() if i.name == args.interface)
    if not iface.addresses:
        raise SystemExit(f"interface {args.interface} has no address")
    sock = workdir / "app.sock"
    vpp.add_app_namespace("vcl-bench", 4242, str(sock), sw_if_index=iface.index)
    conf = workdir / "vcl.conf"
    conf.write_text(
        render_vcl_conf(
            VclConfParams(str(sock), args.fifo_size, args.fifo_size, eventfd, True, "both", 8192)
        )
    )
    subprocess.run(["make", "-s", "-C", str(REPO / "patches")], check=True)
    env = {
        **os.environ,
        "LD_PRELOAD": str(REPO / "patches" / "build" / "libvcl_dualstack.so"),
        "VCL_DUALSTACK_LDP": os.environ["VPP_LDP_LIB"],
        "VCL_CONFIG": str(conf),
        "LDP_SID_BIT": "20",
        "VCL_KERNEL_PORTS": "53",
    }
    return env, iface.addresses[0].address, vpp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interface", default="loop0")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", default="1,16,64,256")
    parser.add_argument("--kernel-only", action="store_true")
    parser.add_argument(
        "--fifo-size",
        type=lambda v: int(v, 0),
        default=4 << 20,
        help="rx/tx fifo bytes per session (the injector's default: 4 MiB)",
    )
    args = parser.parse_args()
    conns = [int(c) for c in args.connections.split(",")]
    if not args.kernel_only and not (
        os.environ.get("VPP_API_SOCKET") and os.environ.get("VPP_LDP_LIB")
    ):
        print(
            "skipped: needs a real VPP: set VPP_API_SOCKET and VPP_LDP_LIB (or use --kernel-only)"
        )
        return
    rows = []
    for n in conns:
        lat = run_pair(dict(os.environ), "127.0.0.1", 15201, n, args.seconds)
        rows.append(("kernel", n, lat))
    idle: dict[str, float] = {}
    if not args.kernel_only:
        for eventfd in (True, False):
            with tempfile.TemporaryDirectory(prefix="vclb", dir="/tmp") as tmp:
                env, host, vpp = vcl_env(Path(tmp), eventfd, args)
                try:
                    if eventfd:
                        for n in conns:
                            rows.append(("vcl", n, run_pair(env, host, 15202, n, args.seconds)))
                    idle["eventfd on" if eventfd else "eventfd off"] = idle_cpu(
                        env, 15203, args.seconds
                    )
                finally:
                    vpp.del_app_namespace("vcl-bench", missing_ok=True)  # type: ignore[attr-defined]
                    vpp.close()  # type: ignore[attr-defined]
    print(f"{'stack':7} {'conns':>5} {'requests':>9} {'p50 us':>8} {'p90 us':>8} {'p99 us':>8}")
    p90 = {}
    for stack, n, lat in rows:
        if len(lat) < 2:
            print(f"{stack:7} {n:5} {'failed':>9}")
            continue
        p90[(stack, n)] = percentile(lat, 90)
        print(
            f"{stack:7} {n:5} {len(lat):9} {percentile(lat, 50):8.0f} {p90[(stack, n)]:8.0f} {percentile(lat, 99):8.0f}"
        )
    for n in conns:
        if ("vcl", n) in p90 and ("kernel", n) in p90:
            print(
                f"P90 change at {n} connections: {100 * (p90[('vcl', n)] / p90[('kernel', n)] - 1):+.0f}%"
            )
    for name, cpu in idle.items():
        print(f"idle epoll app, {name}: {cpu:.1f}% of a core")


if __name__ == "__main__":
    main()
