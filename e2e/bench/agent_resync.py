"""Benchmark: the agent's resync of 1,000 pods after a VPP restart, against FakeVpp.
Prints the seconds and the ratio to 1,000 x one add-namespace round trip (the floor:
a resync must at least re-add every namespace). Target (issue 7): ratio <= 3.

    python3 e2e/bench/agent_resync.py [--pods 1000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "support")]
FIXTURES = REPO / "tests" / "fixtures" / "vpp"
os.environ.setdefault("VPP_FAKE_DEFINITIONS", str(FIXTURES / "api-definitions.json"))

from injected_pods import injected_pod  # noqa: E402

from injector.agent.apply import Applier  # noqa: E402
from injector.agent.hostfiles import HostFiles  # noqa: E402
from injector.agent.plan import plan  # noqa: E402
from injector.agent.registration import desired  # noqa: E402
from vppctl_py import Vpp  # noqa: E402
from vppctl_py.testing import FakeVpp, HeapModel, load_message_table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=1000)
    args = parser.parse_args()
    table = load_message_table(FIXTURES / "message-table.json")
    work = Path(tempfile.mkdtemp(prefix="vclr", dir="/tmp"))
    (work / "vpp").mkdir()
    heap = HeapModel(size=64 << 30)  # room for every namespace: measuring time, not memory
    try:
        with FakeVpp(work / "vpp", message_table=table, heap=heap) as fake:
            vpp = Vpp.connect(fake.api_socket, timeout=30)
            # The floor: one add round trip, measured on namespaces of their own.
            n = 200
            started = time.perf_counter()
            for i in range(n):
                vpp.add_app_namespace(f"floor-{i}", i + 1, str(work / "vpp" / f"f{i}.sock"))
            per_add = (time.perf_counter() - started) / n
            for i in range(n):
                vpp.del_app_namespace(f"floor-{i}")
            pods = [injected_pod(f"p{i}") for i in range(args.pods)]
            wanted, _ = desired(pods, str(work / "r"))
            applier = Applier(vpp, HostFiles(str(work / "r")))
            applier.apply(plan(wanted, applier.observe()))
            fake.restart()
            vpp.reconnect()
            started = time.perf_counter()
            results = applier.apply(plan(wanted, applier.observe()))
            resync = time.perf_counter() - started
            assert all(r.ok for r in results) and len(results) == args.pods
            floor = per_add * args.pods
            print(f"add-namespace round trip: {per_add * 1e3:.2f} ms")
            print(f"resync of {args.pods} pods after a VPP restart: {resync:.2f} s")
            print(
                f"ratio to {args.pods} x add round trip ({floor:.2f} s): {resync / floor:.2f} (target <= 3)"
            )
            vpp.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
