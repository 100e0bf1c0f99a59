"""Same-node pod-to-pod benchmark of mode `local` on a real VPP (#17): C programs from
Debian, one pod serving and one pod calling, registered by the agent's own code
(e2e/fabric/lab.py: a loopback per pod, the endpoint table), through VPP (the client
injected, so the table sends it to VPP) and over the kernel (the same client not
injected: the server listens on both stacks). At 1, 16, 64 and 256 connections:
requests/s, p50/p90/p99 (redis-benchmark reports p95 for p90), and CPU per request of
VPP and of the two pods' processes. Prints one table; run it once per VPP CPU profile
(restart VPP with the other startup.conf) and say which with --profile.

    VPP_API_SOCKET=/run/vpp/api.sock VPP_LDP_LIB=/opt/vpp/lib/.../libvcl_ldpreload.so \\
      python3 -m e2e.bench.fabric --profile shared [--seconds 5] [--conns 1,16,64,256]

Needs root, nginx, wrk, redis-server and redis-benchmark. Targets (#17): p90 <= 0.65x
the kernel's at >= 64 connections in the dedicated profile, <= 1.1x at 1 connection.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from e2e.apps.test_http_servers import NGINX_CONF
from e2e.fabric.lab import NET, Lab
from injector.core import constants as c
from vppctl_py import Vpp

TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    program: str
    conns: int
    path: str
    rps: float
    p50: float  # ms
    p90: float
    p99: float
    cpu_vpp: float  # µs of CPU per request
    cpu_apps: float


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def netns_pids(ns: str) -> list[int]:
    out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def vpp_pids() -> list[int]:
    found: list[int] = []
    for name in ("vpp", "vpp_main"):
        out = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True).stdout
        found += [int(x) for x in out.split()]
    return found


def ms(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", value)
    if not m:
        raise ValueError(f"not a wrk duration: {value!r}")
    return float(m[1]) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m[2]]


def measure(lab: Lab, argv: list[str], injected: bool) -> tuple[str, float, float]:
    """Runs the client in the cli pod; (its output, VPP CPU s, the pods' CPU s: the
    server pod's processes and the client, a child of ours once it has exited)."""
    before_vpp, before_srv = cpu_seconds(vpp_pids()), cpu_seconds(netns_pids("vcl-fab-srv"))
    _children_cpu()
    proc = lab.start("cli", argv, injected=injected)
    out, err = proc.communicate(timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} exit {proc.returncode}: {err[-400:]} {out[-400:]}")
    srv = cpu_seconds(netns_pids("vcl-fab-srv")) - before_srv
    return out, cpu_seconds(vpp_pids()) - before_vpp, srv + _children_cpu()


_last_children = [0.0]


def _children_cpu() -> float:
    """CPU of our exited children since the last call."""
    t = os.times()
    now = t.children_user + t.children_system
    delta, _last_children[0] = now - _last_children[0], now
    return delta


def run_wrk(lab: Lab, conns: int, seconds: float, injected: bool) -> Result:
    wrk = shutil.which("wrk") or "wrk"
    threads = 1 if conns == 1 else 2
    out, vpp, apps = measure(
        lab, [wrk, f"-t{threads}", f"-c{conns}", f"-d{max(1, round(seconds))}s", "--latency",
              f"http://{NET}.10:8080/"], injected,
    )  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    pct = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)", out, re.M))
    n = rps * seconds
    return Result("nginx <- wrk", conns, "vpp" if injected else "kernel", rps,
                  ms(pct["50"]), ms(pct["90"]), ms(pct["99"]),
                  vpp / n * 1e6, apps / n * 1e6)  # fmt: skip


def run_redis(lab: Lab, conns: int, seconds: float, injected: bool) -> Result:
    bench = shutil.which("redis-benchmark") or "redis-benchmark"
    requests = max(20000, int(20000 * seconds * (conns if conns < 16 else 16) / 4))
    out, vpp, apps = measure(
        lab, [bench, "-h", f"{NET}.10", "-p", "6379", "-c", str(conns), "-n", str(requests),
              "-t", "get", "--csv", "--precision", "3"], injected,
    )  # fmt: skip
    rows = list(csv.reader(io.StringIO(out)))
    head, row = rows[0], rows[-1]
    get = dict(zip(head, row, strict=True))
    return Result("redis <- redis-benchmark GET", conns, "vpp" if injected else "kernel",
                  float(get["rps"]), float(get["p50_latency_ms"]), float(get["p95_latency_ms"]),
                  float(get["p99_latency_ms"]), vpp / requests * 1e6, apps / requests * 1e6)  # fmt: skip


def table(results: list[Result], profile: str) -> str:
    lines = [
        f"VPP profile: {profile}",
        "| program | conns | path | req/s | p50 ms | p90 ms | p99 ms | CPU µs/req VPP | "
        "CPU µs/req apps | VPP/kernel req/s | VPP/kernel p90 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    kernel = {(r.program, r.conns): r for r in results if r.path == "kernel"}
    for r in results:
        k = kernel.get((r.program, r.conns))
        ratio = (f"{r.rps / k.rps:.2f}x", f"{r.p90 / k.p90:.2f}x") if k and r.path == "vpp" and k.rps and k.p90 else ("", "")  # fmt: skip
        lines.append(
            f"| {r.program} | {r.conns} | {r.path} | {r.rps:,.0f} | {r.p50:.3f} | {r.p90:.3f} | "
            f"{r.p99:.3f} | {r.cpu_vpp:.1f} | {r.cpu_apps:.1f} | {ratio[0]} | {ratio[1]} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", required=True, help="the VPP profile in force (a label)")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--conns", default="1,16,64,256")
    parser.add_argument(
        "--api-socket", default=os.environ.get("VPP_API_SOCKET", "/run/vpp/api.sock")
    )
    parser.add_argument("--ldp", default=os.environ.get("VPP_LDP_LIB", ""))
    args = parser.parse_args()
    if os.geteuid() != 0 or not Path(args.ldp).is_file():
        sys.exit("needs root and VPP_LDP_LIB (stock libvcl_ldpreload.so)")
    subprocess.run(["make", "-C", "patches"], check=True, capture_output=True)
    root = Path(tempfile.mkdtemp(prefix="vcl-bench-fabric-"))
    Path(c.VCL_DIR).mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    with Vpp.connect(args.api_socket, timeout=5.0, name="bench-fabric") as vpp:
        lab = Lab(vpp, root, args.api_socket, args.ldp)
        try:
            lab.pod("srv", 10, {"app": "srv"})
            lab.pod("cli", 20, {"app": "cli"})
            lab.sync({})
            www = root / "nginx"
            (www / "www").mkdir(parents=True)
            (www / "www" / "index.html").write_text("ok\n")
            (www / "nginx.conf").write_text(NGINX_CONF.format(d=www, port=8080))
            lab.start("srv", [shutil.which("nginx") or "nginx", "-p", str(www), "-c",
                              str(www / "nginx.conf")], stdout=subprocess.DEVNULL)  # fmt: skip
            lab.start("srv", [shutil.which("redis-server") or "redis-server", "--port", "6379",
                              "--save", "", "--appendonly", "no", "--protected-mode", "no"],
                      stdout=subprocess.DEVNULL)  # fmt: skip
            deadline = time.time() + 20
            while time.time() < deadline and len(lab.agent.endpoints.plan.endpoints) < 2:  # type: ignore[union-attr]
                time.sleep(0.3)
                lab.agent.refresh_endpoints()
            print("table:", sorted(map(str, lab.agent.endpoints.plan.endpoints)), flush=True)  # type: ignore[union-attr]
            for conns in [int(x) for x in args.conns.split(",")]:
                for injected in (True, False):
                    results.append(run_wrk(lab, conns, args.seconds, injected))
                    results.append(run_redis(lab, conns, args.seconds, injected))
                    print(results[-2], results[-1], sep="\n", flush=True)
        finally:
            lab.close()
            shutil.rmtree(root, ignore_errors=True)
    results.sort(key=lambda r: (r.program, r.conns, r.path != "vpp"))
    print(table(results, args.profile))


if __name__ == "__main__":
    main()
