"""Pods on one node, wired the way the add-on wires them, around a real VPP.

A `Pod` is a network namespace (its own `lo`, and a veth into a node bridge, which is the
kernel path between pods) plus everything the agent and the webhook give an injected pod:
a VPP app namespace of its own (added through vppctl_py, the agent's client), its
directory with the `vcl.conf` the agent renders from the default settings, the env file
with the namespace id and secret, the report socket the interposer talks to, and the
container env the webhook renders (paths mapped from the pod's view to this host's).
`pod.run(argv, vcl=True)` runs a program injected; `vcl=False` runs it plain, for the
kernel figure of the same pair.

Through VPP, pods reach each other at VPP's interface address (every app namespace is
bound to it until the fabric issue gives each pod its own); over the kernel, at their
veth addresses. VPP's address is not routed in any pod's netns, so a connection that
leaks to the kernel fails instead of passing unseen.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from injector.agent.attachment import REPORT_GRACE_SECONDS, ContainerAttachment, attachment
from injector.agent.registration import PodRegistration
from injector.agent.reports import ProcessReport, ProcessReports
from injector.core import constants as c
from injector.core.annotations import parse_settings
from injector.core.config import InjectorConfig
from injector.core.render import VclConfParams, render_fragments, render_vcl_conf
from vppctl_py.client import Vpp

REPO = Path(__file__).resolve().parents[2]
INTERPOSER = REPO / "patches" / "build" / "libvcl_dualstack.so"
BRIDGE_NETNS = "vcl-apps-node"
KERNEL_NET = "10.98.0"  # the pods' veth addresses: 10.98.0.<n>/24


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check)


@dataclass
class Node:
    """The bridge the pods' veths join, VPP, and the add-on's default settings."""

    vpp: Vpp
    sw_if_index: int
    vpp_address: str
    ldp: str
    lib_dir: str
    config: InjectorConfig = field(default_factory=InjectorConfig)
    pods: list[Pod] = field(default_factory=list)
    reports: ProcessReports = field(default_factory=ProcessReports)
    made: int = 0

    @classmethod
    @contextlib.contextmanager
    def up(cls, vpp: Vpp, sw_if_index: int, vpp_address: str, ldp: str) -> Iterator[Node]:
        sh("ip", "netns", "del", BRIDGE_NETNS, check=False)
        sh("ip", "netns", "add", BRIDGE_NETNS)
        sh("ip", "-n", BRIDGE_NETNS, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", BRIDGE_NETNS, "link", "set", "br0", "up")
        node = cls(vpp, sw_if_index, vpp_address, ldp, str(Path(ldp).parent))
        threading_reader = _ReportReader(node.reports)
        try:
            yield node
        finally:
            threading_reader.stop()
            for pod in list(node.pods):
                pod.delete()
            sh("ip", "netns", "del", BRIDGE_NETNS, check=False)

    def pod(self, name: str, annotations: Mapping[str, str] | None = None) -> Pod:
        """A registered pod; VCL_E2E_APPS_ANNOTATIONS (JSON) adds pod annotations to all."""
        extra = json.loads(os.environ.get("VCL_E2E_APPS_ANNOTATIONS") or "{}")
        self.made += 1  # veth names and addresses are never reused within a run
        pod = Pod(self, name, self.made + 1, {**extra, **(annotations or {})})
        pod.create()
        self.pods.append(pod)
        return pod


class _ReportReader:
    """Drains the pods' report sockets in the background, as the agent does."""

    def __init__(self, reports: ProcessReports) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=reports.run, args=(self._stop,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@dataclass
class Pod:
    node: Node
    name: str
    index: int
    annotations: dict[str, str]
    netns: str = ""
    directory: Path = Path()
    ns_id: str = ""
    uid: str = ""
    started: dict[str, float] = field(default_factory=dict)  # container -> start time

    @property
    def kernel_address(self) -> str:
        return f"{KERNEL_NET}.{self.index}"

    def address(self, vcl: bool) -> str:
        """Where the other pods reach this one: through VPP, or over the kernel."""
        return self.node.vpp_address if vcl else self.kernel_address

    def create(self) -> None:
        self.netns = f"vcl-apps-{self.name}"
        self.uid = f"{self.name}-{secrets.token_hex(4)}"
        self.ns_id = f"apps-{self.uid}"
        sh("ip", "netns", "del", self.netns, check=False)
        sh("ip", "netns", "add", self.netns)
        host, peer = f"va{self.index}", f"vb{self.index}"
        sh("ip", "-n", BRIDGE_NETNS, "link", "add", host, "type", "veth", "peer", "name", peer)
        sh("ip", "-n", BRIDGE_NETNS, "link", "set", peer, "netns", self.netns)
        sh("ip", "-n", BRIDGE_NETNS, "link", "set", host, "master", "br0", "up")
        sh("ip", "-n", self.netns, "link", "set", "lo", "up")
        sh("ip", "-n", self.netns, "addr", "add", f"{self.kernel_address}/24", "dev", peer)
        sh("ip", "-n", self.netns, "link", "set", peer, "up")
        self.directory = Path(tempfile.mkdtemp(prefix=f"vcl-apps-{self.name}-"))
        self.directory.chmod(0o755)
        settings = parse_settings(self.annotations, self.node.config)
        secret = secrets.randbits(63)
        app_socket = str(self.directory / "app.sock")
        reg = SimpleNamespace(uid=self.uid, directory=str(self.directory))
        self.node.reports.ensure(cast(PodRegistration, reg), (None, None))
        self.node.vpp.add_app_namespace(
            self.ns_id, secret, app_socket, sw_if_index=self.node.sw_if_index
        )
        conf = render_vcl_conf(VclConfParams.of(settings, app_socket))
        (self.directory / "vcl.conf").write_text(conf)
        env_file = self.directory / "vcl.env"
        env_file.write_text(
            f"VCL_APP_NAMESPACE_ID={self.ns_id}\nVCL_APP_NAMESPACE_SECRET={secret}\n"
        )
        env_file.chmod(0o600)
        self._env = self._container_env(settings)

    def _container_env(self, settings: Any) -> dict[str, str]:
        """The webhook's env for a selected container, its paths as seen from this host."""
        fragments = render_fragments(self.node.config, settings)
        where = {c.VCL_DIR: str(self.directory), c.LIB_DIR: self.node.lib_dir}
        env: dict[str, str] = {}
        for item in fragments.container_env:
            value = str(item.get("value", ""))
            for inside, outside in where.items():
                value = value.replace(inside, outside)
            env[item["name"]] = value
        env.pop("VCL_POD_UID", None)
        env["VCL_DUALSTACK_LDP"] = self.node.ldp  # lazy wiring, the default
        env["LD_PRELOAD"] = str(INTERPOSER)
        env["LD_LIBRARY_PATH"] = self.node.lib_dir
        return env

    def env(self, container: str, vcl: bool, extra: Mapping[str, str] | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VCL_", "LDP_"))}
        env.pop("LD_PRELOAD", None)
        if vcl:
            env.update(self._env)
            env["LDP_APP_NAME"] = container
        env.update(extra or {})
        return env

    def start(
        self,
        argv: Sequence[str],
        *,
        vcl: bool,
        container: str = "app",
        extra: Mapping[str, str] | None = None,
        stdin: Any = subprocess.DEVNULL,
    ) -> subprocess.Popen[str]:
        self.started.setdefault(container, time.time())
        env = self.env(container, vcl, extra)
        # As in a container, the program is the first process the preload reaches: `ip`
        # and `env` run without it (they would report to the agent as the container).
        preload = [f"LD_PRELOAD={env.pop('LD_PRELOAD')}"] if "LD_PRELOAD" in env else []
        return subprocess.Popen(
            ["ip", "netns", "exec", self.netns, "env", *preload, *argv],
            env=env,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def run(
        self,
        argv: Sequence[str],
        *,
        vcl: bool,
        container: str = "client",
        extra: Mapping[str, str] | None = None,
        timeout: float = 60,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """A program run to its end; a hang is killed and reported as exit code -9."""
        proc = self.start(
            argv, vcl=vcl, container=container, extra=extra,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        )  # fmt: skip
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            stop(proc)
            out, err = proc.communicate()
            err += f"\n[killed after {timeout}s]"
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def reports(self) -> list[ProcessReport]:
        return self.node.reports.of(self.uid)

    def attachment_problem(self, container: str) -> str | None:
        """What the agent would say of this container once its grace period is over."""
        return self.attachment(container).problem

    def ldp_loaded(self, container: str) -> bool:
        """The agent's verdict: a process of the container loaded LDP (vcl-status's LDP)."""
        return self.attachment(container).ldp == "loaded"

    def attachment(self, container: str) -> ContainerAttachment:
        since = math.floor(self.started.get(container, time.time()))  # RFC 3339: seconds
        pod = {"status": {"containerStatuses": [
            {"name": container, "state": {"running": {"startedAt": _rfc3339(since)}}}
        ]}}  # fmt: skip
        bound = math.floor(self.node.reports.bound_at.get(self.uid, since))
        (entry,) = attachment(
            pod, [container], self.reports(), [],
            listening_since=bound, now=since + REPORT_GRACE_SECONDS + 1,
        )  # fmt: skip
        return entry

    def vpp_sessions(self) -> str:
        return self.node.vpp.cli("show session verbose")

    def delete(self) -> None:
        # Whatever still runs in the pod (a daemon's children, a program a test left) would
        # keep spinning against a namespace that is gone and skew every later figure.
        for pid in sh("ip", "netns", "pids", self.netns, check=False).stdout.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), 9)
        with contextlib.suppress(Exception):
            self.node.vpp.del_app_namespace(self.ns_id, missing_ok=True)
        sh("ip", "netns", "del", self.netns, check=False)
        self.node.reports.keep_only({p.uid for p in self.node.pods if p is not self})
        shutil.rmtree(self.directory, ignore_errors=True)
        if self in self.node.pods:
            self.node.pods.remove(self)


def stop(proc: subprocess.Popen[str]) -> None:
    """Ends a program and everything it started (its own session)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            proc.wait()


def _rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
