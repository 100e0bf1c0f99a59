"""vcl-agent: registers this node's injected pods with its VPP and reports on them.

Exit codes: 0 stopped by SIGTERM/SIGINT; 1 cannot start (bad option, no Kubernetes
credentials, unusable root directory); 2 bad command line.
"""

from __future__ import annotations

import signal
import threading
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from injector.agent.controller import Agent, AgentOptions
from injector.agent.cri import Cri, CriError, NetnsLocator
from injector.agent.network import CalicoVppNetwork
from injector.agent.server import create_app
from injector.kube.client import KubeConfigError, api_client
from injector.kube.pods import PodWatch, PolicyWatch
from injector.kube.report import KubeReporter
from injector.webhook.state import configure_logging
from vppctl_py import Vpp

# <root>/pods/<36-char uid>/app.sock must fit in a unix socket name (108 bytes with NUL).
MAX_SOCKET_NAME = 107
UID_LENGTH = 36

app = typer.Typer(add_completion=False, help=__doc__)


class Network(StrEnum):
    local = "local"
    calico_vpp = "calico-vpp"


def check_root(root: str) -> None:
    longest = len(f"{root.rstrip('/')}/pods/{'x' * UID_LENGTH}/app.sock".encode())
    if longest > MAX_SOCKET_NAME:
        raise typer.BadParameter(
            f"{root} is too long: pod sockets under it would have {longest}-byte names, "
            f"and a unix socket name holds at most {MAX_SOCKET_NAME}",
            param_hint="--root",
        )
    path = Path(root)
    if path.exists() and not path.is_dir():
        raise typer.BadParameter(f"{root} exists and is not a directory", param_hint="--root")


def calico_vpp_network(endpoint: str) -> CalicoVppNetwork:
    """The netns locator over the node's CRI, checked once now: a wrong or unmounted
    socket is a start-up error, not a stream of per-pod waits."""
    path = endpoint.removeprefix("unix://")
    if not Path(path).is_socket():
        typer.echo(
            f"vcl-agent: error: --network calico-vpp needs the node's CRI socket, and "
            f"{path} is not a socket (mount the host's containerd or CRI-O socket and set "
            "--cri-endpoint / CONTAINER_RUNTIME_ENDPOINT)",
            err=True,
        )
        raise typer.Exit(1)
    cri = Cri(endpoint)
    try:
        cri.ready_sandboxes()
    except CriError as exc:
        cri.close()
        typer.echo(f"vcl-agent: error: {exc}", err=True)
        raise typer.Exit(1) from exc
    return CalicoVppNetwork(NetnsLocator(cri))


@app.command()
def run(
    node: Annotated[str, typer.Option(envvar="NODE_NAME", help="This node's name.")],
    vpp_api_socket: Annotated[
        str, typer.Option(envvar="VPP_API_SOCKET", help="VPP's binary API socket.")
    ] = "/run/vpp/api.sock",
    root: Annotated[
        str, typer.Option(envvar="VCL_ROOT", help="Host directory of the per-pod directories.")
    ] = "/var/run/vcl",
    network: Annotated[Network, typer.Option(envvar="VCL_NETWORK")] = Network.local,
    interface: Annotated[
        str | None,
        typer.Option(
            help="local mode: bind every namespace to this VPP interface instead of "
            "a loopback per pod."
        ),
    ] = None,
    node_vrf: Annotated[
        int,
        typer.Option(help="local mode: the VPP table of the pods' loopbacks (made if missing)."),
    ] = 1985,
    kubeconfig: Annotated[
        str | None, typer.Option(envvar="KUBECONFIG", help="Default: in-cluster config.")
    ] = None,
    resync_period: Annotated[float, typer.Option(help="Seconds between full resyncs.")] = 60.0,
    port: Annotated[int, typer.Option(help="HTTP port of /status, /metrics, /healthz.")] = 9464,
    cri_endpoint: Annotated[
        str,
        typer.Option(
            envvar="CONTAINER_RUNTIME_ENDPOINT",
            help="calico-vpp mode: the node's CRI socket, to find each pod's netns "
            "(containerd: unix:///run/containerd/containerd.sock, CRI-O: "
            "unix:///var/run/crio/crio.sock).",
        ),
    ] = "unix:///run/containerd/containerd.sock",
    evict_on_vpp_restart: Annotated[
        bool, typer.Option(help="Evict registered pods after VPP restarts.")
    ] = True,
    log_format: Annotated[str, typer.Option(help="text or json")] = "json",
) -> None:
    """Run the node agent."""
    configure_logging(log_format)
    check_root(root)
    pod_network = None
    if network is Network.calico_vpp:
        pod_network = calico_vpp_network(cri_endpoint)
    try:
        api = api_client(kubeconfig)
    except KubeConfigError as exc:
        typer.echo(f"vcl-agent: error: {exc}", err=True)
        raise typer.Exit(1) from exc
    options = AgentOptions(
        node=node, root=root, resync_period=resync_period,
        evict_on_vpp_restart=evict_on_vpp_restart, interface=interface,
        network=network.value, pod_interfaces=True, node_vrf=node_vrf,
    )  # fmt: skip
    agent = Agent(
        options,
        connect=lambda: Vpp.connect(vpp_api_socket, timeout=5.0, name=f"vcl-agent-{node}"),
        reporter=KubeReporter(api, node),
        pod_network=pod_network,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    watcher = PodWatch(api, node, on_sync=agent.sync_pods, on_event=agent.pod_event)
    threads = [
        threading.Thread(target=watcher.run, args=(stop,), name="pod-watch", daemon=True),
        threading.Thread(target=agent.run, args=(stop,), name="reconcile", daemon=True),
        threading.Thread(target=agent.reports.run, args=(stop,), name="reports", daemon=True),
    ]
    policies = None
    if network is Network.local:  # the endpoint table leaves out policy-selected pods
        policies = PolicyWatch(api, on_sync=agent.sync_policies, on_event=agent.policy_event)
        threads.append(threading.Thread(target=policies.run, args=(stop,),
                                        name="policy-watch", daemon=True))  # fmt: skip
    server = uvicorn.Server(
        uvicorn.Config(create_app(agent), host="0.0.0.0", port=port, log_config=None)
    )
    threads.append(threading.Thread(target=server.run, name="http", daemon=True))
    for thread in threads:
        thread.start()
    stop.wait()
    server.should_exit = True
    watcher.stop()
    if policies is not None:
        policies.stop()
    agent.wake()
    threads[1].join(timeout=10)  # the reconcile pass under way finishes first
    agent.shutdown()


def main() -> None:
    app()
