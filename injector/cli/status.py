"""vcl-status: per pod, what is injected, registered and attached, and what is wrong.

Exit codes: 0 every selected pod is fine; 1 a selected pod is unhealthy (opted in but
not injected, not registered, its agent or VPP unreachable); 2 bad command line; 3 the
API server could not be read.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from injector.cli.status_view import PodRow, pod_row
from injector.core.config import ConfigError, load_config
from injector.kube.client import KubeConfigError, api_client
from injector.kube.cluster import AgentReply, Cluster, ClusterError

app = typer.Typer(add_completion=False, help=__doc__)
EXIT_UNHEALTHY = 1
EXIT_API = 3


class Output(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


def collect(
    cluster: Cluster, pod: str | None, namespace: str | None, config_path: Path | None
) -> list[PodRow]:
    config = load_config(config_path)
    pods = cluster.pods(namespace)
    if pod is not None:
        pods = [p for p in pods if p["metadata"].get("name") == pod]
    labels = cluster.namespace_labels()
    replies: dict[str, AgentReply] = {}
    for node in sorted({p.get("spec", {}).get("nodeName") or "" for p in pods} - {""}):
        replies[node] = cluster.agent_status(node)
    rows = []
    for p in pods:
        reply = replies.get(p.get("spec", {}).get("nodeName") or "")
        rows.append(
            pod_row(
                p,
                labels.get(p["metadata"].get("namespace", ""), {}),
                reply.status if reply else None,
                config,
                agent_error=(reply.error if reply else "the pod is not scheduled yet"),
            )
        )
    return rows


def _served(row: PodRow) -> str:
    """Mode local: the listeners VPP serves, then those it does not and why."""
    if row.table_generation is None:
        return "-"
    parts = [", ".join(row.vpp_serves) or "none"]
    parts += [f"not {x}" for x in row.not_through_vpp]
    return "; ".join(parts) + f" (table {row.table_generation})"


def _connections(row: PodRow) -> str:
    """Open connections per stack, as the pod's processes count them, and VPP peers."""
    if not row.injected:
        return "-"
    if row.connections is None:
        return f"{row.sessions} VPP sessions"
    c = row.connections
    text = f"vpp {c.get('vpp', 0)} / kernel {c.get('kernel', 0)} / lo {c.get('loopback', 0)}"
    return text + (f" (to {', '.join(row.vpp_peers)} via VPP)" if row.vpp_peers else "")


def render_table(rows: list[PodRow], console: Console) -> None:
    table = Table(show_lines=False, header_style="bold")
    for column in ("NAMESPACE", "POD", "INJECTED", "DATAPLANE", "REGISTERED", "APPS/WORKERS",
                   "CONNECTIONS", "EVENTFD", "KERNEL", "VPP SERVES", "STATUS"):  # fmt: skip
        table.add_column(column)
    for row in rows:
        status = "ok" if row.healthy else "UNHEALTHY"
        notes = "; ".join(row.warnings) or ("" if row.injected else row.reason)
        table.add_row(
            row.namespace,
            row.name,
            "yes" if row.injected else "no",
            row.dataplane or "-",
            row.registered or (row.state or "-"),
            f"{row.apps}/{row.workers}" if row.injected else "-",
            _connections(row),
            {True: "on", False: "OFF (spins)", None: "-"}[row.eventfd],
            row.kernel_rules or "-",
            _served(row),
            f"{status}: {notes}" if notes else status,
        )
    console.print(table)


@app.command()
def status(
    pod: Annotated[str | None, typer.Argument(help="One pod (by name); default: all.")] = None,
    namespace: Annotated[str | None, typer.Option("-n", "--namespace")] = None,
    all_namespaces: Annotated[bool, typer.Option("-A", "--all-namespaces")] = False,
    output: Annotated[Output, typer.Option("-o", "--output")] = Output.table,
    kubeconfig: Annotated[str | None, typer.Option(envvar="KUBECONFIG")] = None,
    config: Annotated[Path | None, typer.Option(help="Injector config, for exclusions.")] = None,
    agent_namespace: Annotated[str, typer.Option(help="Where vcl-agent runs.")] = "vcl-system",
) -> None:
    """Show, per pod: injected or why not, dataplane, registration, apps/workers, sessions,
    eventfd, kernel (dual-stack) rules and warnings."""
    selected = None if all_namespaces else (namespace or "default")
    try:
        cluster = Cluster(api_client(kubeconfig), agent_namespace)
        rows = collect(cluster, pod, selected, config)
    except (KubeConfigError, ClusterError, ConfigError) as exc:
        typer.echo(f"vcl-status: error: {exc}", err=True)
        raise typer.Exit(EXIT_API) from exc
    if pod is not None and not rows:
        typer.echo(
            f"vcl-status: error: pod {pod} not found in {selected or 'any namespace'}", err=True
        )
        raise typer.Exit(EXIT_API)
    body: Any = [r.as_dict() for r in rows]
    if output is Output.json:
        typer.echo(json.dumps(body, indent=2))
    elif output is Output.yaml:
        typer.echo(yaml.safe_dump(body, sort_keys=False))
    else:
        # Piped or redirected output gets a wide table rather than one folded to 80 columns.
        console = Console() if sys.stdout.isatty() else Console(width=220, no_color=True)
        render_table(rows, console)
    if any(not r.healthy for r in rows):
        raise typer.Exit(EXIT_UNHEALTHY)


def main() -> None:
    app()


kubectl_plugin = typer.Typer(
    add_completion=False, no_args_is_help=True, help="kubectl vcl: vcl-injector commands."
)
kubectl_plugin.command("status")(status)


@kubectl_plugin.callback()
def _plugin() -> None:
    """kubectl vcl: vcl-injector commands (kubectl vcl status ...)."""
    # A callback makes the plugin a command group: with only one command, typer would
    # otherwise run `status` for `kubectl vcl status -n demo` and take "status" as POD.


def kubectl_main() -> None:
    """`kubectl vcl status ...` (kubectl runs kubectl-vcl from PATH)."""
    kubectl_plugin()


if __name__ == "__main__":
    main()
