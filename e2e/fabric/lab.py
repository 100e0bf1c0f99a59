"""The mode-`local` lab on a real VPP: each "pod" a network namespace whose kernel address
is its pod IP (on a bridge, as a CNI would give it), registered by the node agent's own
code (a loopback per pod in the node VRF, files, the endpoint table); programs run under
the interposer and stock LDP with the injected container's env and the pod's directory
mounted at /etc/vcl. Used by e2e/fabric's tests and e2e/bench/fabric.py."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from injector.agent.controller import Agent, AgentOptions
from injector.core import constants as c
from vppctl_py import Vpp

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "tests" / "support") not in sys.path:  # pytest puts it there; a script not
    sys.path.append(str(REPO / "tests" / "support"))
from injected_pods import injected_pod  # noqa: E402  (the webhook's own injection)

INTERPOSER = REPO / "patches" / "build" / "libvcl_dualstack.so"
NET = "10.244.77"  # the lab's pod range: on bridges in namespaces made here, nowhere else
BRIDGE_NS = "vcl-fab-br"
VRF = 1985
KERNEL, VCL = 1, 2


def sh(*argv: str, check: bool = True) -> None:
    subprocess.run(argv, check=check, capture_output=True)


class Lab:
    def __init__(self, vpp: Vpp, root: Path, api_socket: str, ldp: str) -> None:
        self.vpp = vpp
        self.root = root
        self.ldp = ldp
        self.pods: dict[str, dict[str, Any]] = {}
        self.procs: list[subprocess.Popen[str]] = []
        self.namespaces: list[str] = []
        self.agent = Agent(
            AgentOptions(node="node-a", root=str(root), pod_interfaces=True, node_vrf=VRF),
            connect=lambda: Vpp.connect(api_socket, timeout=5.0, name="e2e-fabric-agent"),
        )
        # the pods' report sockets, as the agent's run loop serves them
        self._stop = threading.Event()
        self._reports = threading.Thread(target=self.agent.reports.run, args=(self._stop,),
                                         daemon=True)  # fmt: skip
        self._reports.start()
        sh("ip", "netns", "del", BRIDGE_NS, check=False)
        sh("ip", "netns", "add", BRIDGE_NS)
        sh("ip", "-n", BRIDGE_NS, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", BRIDGE_NS, "link", "set", "br0", "up")

    def netns(self, name: str, host: int) -> str:
        ns = f"vcl-fab-{name}"
        self.namespaces.append(ns)
        sh("ip", "netns", "del", ns, check=False)
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", BRIDGE_NS, "link", "add", f"fa{host}", "type", "veth", "peer", "name",
           f"fb{host}")  # fmt: skip
        sh("ip", "-n", BRIDGE_NS, "link", "set", f"fb{host}", "netns", ns)
        sh("ip", "-n", BRIDGE_NS, "link", "set", f"fa{host}", "master", "br0", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", ns, "addr", "add", f"{NET}.{host}/24", "dev", f"fb{host}")
        sh("ip", "-n", ns, "link", "set", f"fb{host}", "up")
        return ns

    def pod(self, name: str, host: int, labels: dict[str, str]) -> dict[str, Any]:
        p = injected_pod(name)
        p["metadata"]["labels"] = labels
        p["status"].update(podIP=f"{NET}.{host}", podIPs=[{"ip": f"{NET}.{host}"}],
                           phase="Running")  # fmt: skip
        p["_netns"] = self.netns(name, host)
        self.pods[name] = p
        return p

    def sync(self, policies: dict[str, dict[str, Any]]) -> None:
        self.agent.sync_pods({p["metadata"]["uid"]: p for p in self.pods.values()})
        self.agent.sync_policies(policies)
        assert self.agent.reconcile()
        self.agent.refresh_endpoints()

    def start(self, name: str, argv: list[str], injected: bool = True,
              stdout: Any = subprocess.PIPE) -> subprocess.Popen[str]:  # fmt: skip
        p = self.pods.get(name)
        ns = p["_netns"] if p else f"vcl-fab-{name}"
        cmd = ["ip", "netns", "exec", ns]
        env = {"PATH": os.environ["PATH"], "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
        if injected and p is not None:
            directory = self.root / "pods" / p["metadata"]["uid"]
            (container,) = p["spec"]["containers"]
            env.update({e["name"]: str(e.get("value", "")) for e in container.get("env", [])
                        if "value" in e})  # fmt: skip
            env.pop("VCL_POD_UID", None)
            env.update(LD_PRELOAD=str(INTERPOSER), VCL_DUALSTACK_LDP=self.ldp,
                       LD_LIBRARY_PATH=str(Path(self.ldp).parent), LDP_APP_NAME="app")  # fmt: skip
            # the pod's directory where the pod sees it, as the kubelet mounts it
            script = f"mount --bind {directory} {c.VCL_DIR} && exec env -i "
            script += " ".join(f"{k}='{v}'" for k, v in env.items()) + " " + " ".join(
                f"'{a}'" for a in argv
            )  # fmt: skip
            cmd += ["sh", "-c", script]
            env = {"PATH": os.environ["PATH"]}
        else:
            cmd += argv
        proc = subprocess.Popen(cmd, env=env, text=True, stdin=subprocess.PIPE,
                                stdout=stdout, stderr=subprocess.PIPE)  # fmt: skip
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        # every process of every pod (nginx's workers outlive their master): a VCL app
        # whose namespace is deleted under it spins
        for ns in self.namespaces:
            out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
            for pid in out.stdout.split():
                subprocess.run(["kill", "-9", pid], capture_output=True)
        for proc in self.procs:
            proc.kill()
            proc.wait()
        self.pods.clear()
        self.agent.sync_pods({})
        self.agent.reconcile()  # namespaces, loopbacks and directories go
        self._stop.set()
        self._reports.join(timeout=5)
        self.agent.shutdown()
        for ns in self.namespaces:
            sh("ip", "netns", "del", ns, check=False)
        sh("ip", "netns", "del", BRIDGE_NS, check=False)
