"""Benchmark (not a test): loopback 1-byte TCP ping-pong with and without the interposer.

Runs patches' `pingpong` program (100k round trips by default) in one go: plain; with
libvcl_dualstack.so preloaded on a kernel (loopback) connection; and, for reference, with
the test knob moving the connection to the "VCL side" (libc again in CI, so this measures
the forwarding alone). Rounds alternate to spread machine noise; the best round counts.
Prints each figure and the ratio to plain (target for the kernel path: <= 1.05). Then, as
a noise-resistant check of the same thing, the cost of one intercepted call: 1M
non-blocking recv() calls on an idle connection (EAGAIN each), plain and preloaded.

    python3 e2e/bench/interposer_pingpong.py [--iterations 100000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path

PATCHES = Path(__file__).resolve().parents[2] / "patches"


def run_once(iterations: int, host: str, env: dict[str, str], *mode: str) -> int:
    out = subprocess.run(
        [str(PATCHES / "build" / "pingpong"), host, str(iterations), *mode],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    subprocess.run(["make", "-s", "-C", str(PATCHES)], check=True)

    base = {k: v for k, v in os.environ.items() if not k.startswith(("VCL_", "LDP_"))}
    base.pop("LD_PRELOAD", None)
    lib = str(PATCHES / "build" / "libvcl_dualstack.so")
    configs = {
        "no interposer": ("127.0.0.1", base),
        "interposer, kernel path": ("127.0.0.1", {**base, "LD_PRELOAD": lib}),
        "interposer, moved (libc behind)": (
            "127.0.0.2",
            {**base, "LD_PRELOAD": lib, "VCL_DUALSTACK_TEST": "1"},
        ),
    }
    best: dict[str, int] = {}
    for _ in range(args.rounds):
        for name, (host, env) in configs.items():
            ns = run_once(args.iterations, host, env)
            best[name] = min(best.get(name, ns), ns)

    plain = best["no interposer"]
    print(f"{args.iterations} round trips, best of {args.rounds} rounds")
    for name, ns in best.items():
        per = ns / args.iterations / 1000
        print(f"  {name:34s} {ns / 1e9:7.3f} s  {per:6.2f} us/rtt  ratio {ns / plain:.3f}")

    calls = 1_000_000
    per_call: dict[str, float] = {}
    for _ in range(args.rounds):
        for name in ("no interposer", "interposer, kernel path"):
            host, env = configs[name]
            ns = run_once(calls, host, env, "calls") / calls
            per_call[name] = min(per_call.get(name, ns), ns)
    added = per_call["interposer, kernel path"] - per_call["no interposer"]
    print(f"{calls} non-blocking recv() calls (EAGAIN), best of {args.rounds} rounds")
    for name, ns in per_call.items():
        print(f"  {name:34s} {ns:7.1f} ns/call")
    print(f"  added by the interposer            {added:7.1f} ns/call")


if __name__ == "__main__":
    main()
