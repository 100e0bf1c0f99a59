"""#17 on a real VPP 26.06: the default install's mode `local`, end to end through the
agent's own code. Each "pod" is a network namespace whose kernel address is its pod IP
(on a bridge, as a CNI would give it); the Agent registers the pods in VPP (a loopback per
pod with its IP in the node VRF, its namespace bound to it), writes each pod's files and
publishes the node's endpoint table; the programs run under the interposer and stock LDP
with the injected container's env and the pod's directory mounted at /etc/vcl.

Checked: two replicas on one port, each reached through VPP by its own IP (the session
seen in VPP); a plain (non-injected) peer reached over the kernel; a pod a NetworkPolicy
selects is left out of the table, so new connections to it take the kernel and still
reach it, while a connection made through VPP before the change carries on. Each pod's
open connections per stack, as its processes count them, are what the agent reads.

Needs root, VPP_API_SOCKET (a VPP 26.06 on this host, which can create sockets under
VCL_E2E_ROOT, default /tmp/vcl-e2e-fabric) and VPP_LDP_LIB (stock libvcl_ldpreload.so)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.fabric.lab import KERNEL, NET, REPO, VCL, VRF, Lab
from injector.core import constants as c
from vppctl_py import Vpp

SOCKET = os.environ.get("VPP_API_SOCKET", "")
LDP = os.environ.get("VPP_LDP_LIB", "")

# One thread, as VCL's per-thread workers want (a thread per connection is reported).
SERVER = """
import selectors, socket, sys
s = socket.create_server(("0.0.0.0", 8080))
s.setblocking(False)
sel = selectors.DefaultSelector()
sel.register(s, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        if key.fileobj is s:
            try:
                conn, _ = s.accept()
            except BlockingIOError:
                continue
            sel.register(conn, selectors.EVENT_READ)
            continue
        data = key.fileobj.recv(64)
        if data:
            key.fileobj.sendall(sys.argv[1].encode() + b":" + data)
        else:
            sel.unregister(key.fileobj)
            key.fileobj.close()
"""

# Lines on stdin: "open NAME HOST PORT" (connect, say hello, print answer and path),
# "send NAME" (another exchange on that connection), "quit".
CLIENT = """
import ctypes, socket, sys
path_of = ctypes.CDLL(None).vcl_dualstack_path
conns = {}
for line in sys.stdin:
    words = line.split()
    if words[0] == "quit":
        break
    if words[0] == "open":
        s = socket.create_connection((words[2], int(words[3])), timeout=10)
        conns[words[1]] = s
    s = conns[words[1]]
    s.sendall(b"hi")
    print(s.recv(64).decode(), path_of(s.fileno()), flush=True)
"""


@pytest.fixture(scope="module")
def vpp() -> Iterator[Vpp]:
    if os.geteuid() != 0:
        pytest.skip("needs root: every pod is a network namespace")
    if not Path(SOCKET).is_socket():
        pytest.skip("no real VPP: set VPP_API_SOCKET to its binary API socket")
    if not Path(LDP).is_file():
        pytest.skip("VPP_LDP_LIB is not set to stock libvcl_ldpreload.so")
    made = subprocess.run(["make", "-C", str(REPO / "patches")], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    with Vpp.connect(SOCKET, timeout=5.0, name="e2e-fabric") as client:
        yield client


@pytest.fixture
def lab(vpp: Vpp) -> Iterator[Lab]:
    root = Path(os.environ.get("VCL_E2E_ROOT", "/tmp/vcl-e2e-fabric"))
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    Path(c.VCL_DIR).mkdir(parents=True, exist_ok=True)  # the mount point the pods use
    made = Lab(vpp, root, SOCKET, LDP)
    try:
        yield made
    finally:
        made.close()
        shutil.rmtree(root, ignore_errors=True)


def ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "ready", (line, proc.stderr.read() if proc.stderr else "")


def ask(cli: subprocess.Popen[str], line: str) -> tuple[str, int]:
    assert cli.stdin is not None and cli.stdout is not None
    cli.stdin.write(line + "\n")
    cli.stdin.flush()
    answer = cli.stdout.readline().split()
    assert answer, cli.stderr.read() if cli.stderr else ""
    return answer[0], int(answer[1])


def opened(lab: Lab, name: str) -> dict[str, int] | None:
    """The pod's open connections per stack as the agent reads them (a few tries: the
    page arrives with the process's first connection)."""
    uid = lab.pods[name]["metadata"]["uid"]
    for _ in range(50):
        if got := lab.agent.reports.connections(uid):
            return got["open"]  # type: ignore[no-any-return]
        time.sleep(0.1)
    return None


def test_pods_reach_each_other_through_vpp_by_pod_ip_and_the_rest_over_the_kernel(
    lab: Lab, vpp: Vpp
) -> None:
    lab.pod("srv", 10, {"app": "web"})
    lab.pod("srv2", 11, {"app": "db"})
    lab.pod("cli", 20, {"app": "client"})
    lab.netns("peer", 30)
    lab.sync({})
    loopbacks = {i.tag: i for i in vpp.interfaces() if i.tag.startswith("vcl:")}
    assert len(loopbacks) == 3 and {i.vrf for i in loopbacks.values()} == {VRF}
    for name in ("srv", "srv2"):  # two replicas of a server on one port
        ready(lab.start(name, [sys.executable, "-c", SERVER, name]))
    ready(lab.start("peer", [sys.executable, "-c", SERVER.replace("8080", "9000"), "peer"],
                    injected=False))  # fmt: skip
    deadline = time.time() + 10
    while len(lab.agent.endpoints.plan.endpoints) < 2 and time.time() < deadline:  # type: ignore[union-attr]
        time.sleep(0.2)
        lab.agent.refresh_endpoints()
    assert {str(e) for e in lab.agent.endpoints.plan.endpoints} == {  # type: ignore[union-attr]
        f"{NET}.10:8080/tcp",
        f"{NET}.11:8080/tcp",
    }
    cli = lab.start("cli", [sys.executable, "-c", CLIENT])
    assert ask(cli, f"open a {NET}.10 8080") == ("srv:hi", VCL)
    assert ask(cli, f"open b {NET}.11 8080") == ("srv2:hi", VCL)
    assert ask(cli, f"open p {NET}.30 9000") == ("peer:hi", KERNEL)
    sessions = vpp.cli("show session verbose")
    assert f"{NET}.10:8080" in sessions and f"{NET}.11:8080" in sessions, sessions
    # what vcl-status shows: each side's open connections per stack, as its processes
    # count them (both servers' accepts were on VPP)
    assert opened(lab, "cli") == {"vpp": 2, "kernel": 1, "loopback": 0}
    assert opened(lab, "srv") == opened(lab, "srv2") == {"vpp": 1, "kernel": 0, "loopback": 0}
    # srv2 gets a NetworkPolicy: out of the table; new connections take the kernel
    guard = {"metadata": {"uid": "np-1", "name": "db-in", "namespace": "demo"},
             "spec": {"podSelector": {"matchLabels": {"app": "db"}}}}  # fmt: skip
    lab.agent.sync_policies({"np-1": guard})
    lab.agent.refresh_endpoints()
    assert ask(cli, f"open b2 {NET}.11 8080") == ("srv2:hi", KERNEL)
    assert ask(cli, "send b") == ("srv2:hi", VCL)  # the connection made before carries on
    assert ask(cli, f"open a2 {NET}.10 8080") == ("srv:hi", VCL)
    assert opened(lab, "cli") == {"vpp": 3, "kernel": 2, "loopback": 0}
    assert opened(lab, "srv2") == {"vpp": 1, "kernel": 1, "loopback": 0}
    assert cli.stdin is not None
    cli.stdin.write("quit\n")
    cli.stdin.flush()
