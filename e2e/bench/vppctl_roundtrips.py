"""Benchmark (figures, not a test): round trips per second through vppctl_py.

Measures ping() (control_ping) and add+del of an app namespace (the add, then the
delete with its `show app ns` safety check) against FakeVpp, or against a real VPP when
VPP_API_SOCKET is set. This is the floor the agent's resync time is judged against.

Run: python3 e2e/bench/vppctl_roundtrips.py [--count N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from vppctl_py import Vpp
from vppctl_py.testing import FakeVpp

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "vpp"


def rate(label: str, count: int, step: Callable[[int], None]) -> float:
    step(-1)  # warm up
    start = time.perf_counter()
    for i in range(count):
        step(i)
    elapsed = time.perf_counter() - start
    per_second = count / elapsed
    print(f"{label:<34} {per_second:>9.0f}/s  {elapsed / count * 1e6:>8.0f} µs each  (n={count})")
    return per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    os.environ.setdefault("VPP_FAKE_DEFINITIONS", str(FIXTURES / "api-definitions.json"))
    with ExitStack() as stack:
        api_socket = os.environ.get("VPP_API_SOCKET")
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if api_socket is None:
            api_socket = stack.enter_context(FakeVpp(workdir)).api_socket
            print("against FakeVpp")
        else:
            print(f"against VPP at {api_socket}")
        vpp = stack.enter_context(Vpp.connect(api_socket))
        rate("ping()", args.count, lambda _: vpp.ping())

        def add_del(i: int) -> None:
            vpp.add_app_namespace(f"bench-{i + 1}", 1, f"abstract:bench-{i + 1}")
            vpp.del_app_namespace(f"bench-{i + 1}")

        rate("add_app_namespace+del_app_namespace", max(1, args.count // 4), add_del)
        rate("app_namespaces()", max(1, args.count // 4), lambda _: vpp.app_namespaces())


if __name__ == "__main__":
    main()
