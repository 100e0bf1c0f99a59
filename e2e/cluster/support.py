"""Helpers of the cluster e2e (docs/e2e.md): kubectl, VPP's CLI in the node's VPP pod,
the agent's pod, vcl-status, and whether the add-on is up."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client

ADDON_NAMESPACE = os.environ.get("VCL_ADDON_NAMESPACE", "vcl-system")
REPO = Path(__file__).resolve().parents[2]
APP_IMAGE = os.environ.get("VCL_E2E_APP_IMAGE", "vcl-e2e/app:minbase")


def kubectl(*args: str, check: bool = True, timeout: float = 300) -> str:
    out = subprocess.run(["kubectl", *args], capture_output=True, text=True, timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout


def addon_ready(api: Any) -> bool:
    apps = client.AppsV1Api(api)
    try:
        webhook = apps.read_namespaced_deployment("vcl-injector", ADDON_NAMESPACE)
        daemons = [apps.read_namespaced_daemon_set(n, ADDON_NAMESPACE)
                   for n in ("vcl-agent", "vcl-vpp")]  # fmt: skip
    except client.exceptions.ApiException:
        return False
    ready = (webhook.status.ready_replicas or 0) == webhook.spec.replicas
    return ready and all(
        d.status.number_ready == d.status.desired_number_scheduled > 0 for d in daemons
    )


def addon_pod(api: Any, name: str) -> str:
    """The running pod of DaemonSet/Deployment `name` (single node)."""
    pods = (
        client.CoreV1Api(api)
        .list_namespaced_pod(ADDON_NAMESPACE, label_selector=f"app.kubernetes.io/name={name}")
        .items
    )
    running = [p for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp]
    assert running, f"no running {name} pod"
    return str(running[0].metadata.name)


def vppctl(api: Any, command: str) -> str:
    """VPP's CLI in the node's VPP pod (what an operator would run)."""
    pod = addon_pod(api, "vcl-vpp")
    return kubectl("exec", "-n", ADDON_NAMESPACE, pod, "--", "vppctl", "-s",
                   "/run/vpp/cli.sock", *command.split())  # fmt: skip


def agent_exec(api: Any, *argv: str) -> str:
    return kubectl("exec", "-n", ADDON_NAMESPACE, addon_pod(api, "vcl-agent"), "--", *argv)


def vcl_status(*args: str) -> tuple[int, list[dict[str, Any]]]:
    out = subprocess.run(["vcl-status", *args, "-o", "json"], capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    try:
        return out.returncode, json.loads(out.stdout or "[]")
    except ValueError:
        raise AssertionError(f"vcl-status: {out.stdout} {out.stderr}") from None


def deployment(name: str, command: list[str], *, probe_port: int | None = None,
               replicas: int = 1) -> dict[str, Any]:  # fmt: skip
    container: dict[str, Any] = {"name": name, "image": APP_IMAGE,
                                 "imagePullPolicy": "IfNotPresent", "command": command}  # fmt: skip
    if probe_port:
        container["readinessProbe"] = {"httpGet": {"path": "/", "port": probe_port},
                                       "periodSeconds": 2}  # fmt: skip
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [container],
                                       "terminationGracePeriodSeconds": 2}}},
    }  # fmt: skip


def ready_pods(api: Any, namespace: str, app: str) -> list[Any]:
    pods = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=f"app={app}")
    return [
        p for p in pods.items
        if not p.metadata.deletion_timestamp
        and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
    ]  # fmt: skip


def start(api: Any, namespace: str, wait_for: Callable[..., Any], name: str,
          command: list[str], **kwargs: Any) -> Any:  # fmt: skip
    client.AppsV1Api(api).create_namespaced_deployment(
        namespace, deployment(name, command, **kwargs)
    )
    return wait_for(f"{name} Ready", lambda: (ready_pods(api, namespace, name) or [None])[0])


class HeldExchange:
    """`echo.py send` in an injected pod, its connection kept open HOLD seconds after the
    exchange: while it is held, the test looks at VPP's sessions and vcl-status."""

    def __init__(self, namespace: str, pod: str, host: str, port: int, hold: float = 15,
                 count: int = 200) -> None:  # fmt: skip
        self.proc = subprocess.Popen(
            ["kubectl", "exec", "-n", namespace, pod, "--", "python3", "/opt/e2e/echo.py",
             "send", host, str(port), str(count), "1024", str(hold)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def __enter__(self) -> HeldExchange:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if line != "exchanged":
            self.proc.kill()
            raise AssertionError(f"the exchange failed: {line} {self.proc.stderr.read()}")  # type: ignore[union-attr]
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            out, err = self.proc.communicate(timeout=120)
        finally:
            self.proc.kill()
        if exc[0] is None:
            assert self.proc.returncode == 0, err
            assert out.strip().startswith("sent="), out


def vpp_sessions_to(api: Any, ip: str, port: int) -> list[str]:
    """VPP's established sessions with ip:port at either end (a cut-through client's
    session shows 0.0.0.0:0->ip:port, the server's ip:port->0.0.0.0:0)."""
    return [
        line for line in vppctl(api, "show session verbose").splitlines()
        if "ESTABLISHED" in line and f"{ip}:{port}" in line
    ]  # fmt: skip
