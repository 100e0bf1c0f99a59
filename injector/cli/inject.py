"""vcl-inject: inject manifests offline, like `istioctl kube-inject`.

Exit codes: 0 done; 1 invalid input (YAML, a pod that cannot be injected, a bad
annotation); 2 bad command line; 3 bad config file. Nothing is printed on stdout unless
every document was processed.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from injector.cli.manifests import ManifestError, dump_json, dump_yaml, load_documents
from injector.core import constants as c
from injector.core.config import ConfigError, load_config
from injector.core.workloads import inject_object

EXIT_INVALID_INPUT = 1
EXIT_CONFIG = 3


class Output(StrEnum):
    yaml = "yaml"
    json = "json"


class DataplaneOption(StrEnum):
    node = "node"
    pod = "pod"


app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def run(
    filename: Annotated[
        str, typer.Option("-f", "--filename", help="Manifest file, or - for standard input.")
    ],
    output: Annotated[Output, typer.Option("-o", "--output", help="Output format.")] = Output.yaml,
    config_file: Annotated[
        Path | None,
        typer.Option("--config", help="Injector config (YAML); default: the embedded one."),
    ] = None,
    dataplane: Annotated[
        DataplaneOption | None,
        typer.Option(help="Default dataplane; a pod's vcl.io/dataplane annotation still wins."),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("-q", "--quiet", help="Do not report skipped pod templates.")
    ] = False,
) -> None:
    """Print the manifests with every pod template injected; other objects unchanged."""
    try:
        config = load_config(config_file)
    except ConfigError as exc:
        _fail(str(exc), EXIT_CONFIG)
    if dataplane is not None:
        config = config.model_copy(update={"default_dataplane": dataplane.value})
    source = "<stdin>" if filename == "-" else filename
    try:
        text = sys.stdin.read() if filename == "-" else Path(filename).read_text(encoding="utf-8")
    except OSError as exc:
        _fail(f"{source}: cannot read: {exc.strerror}", EXIT_INVALID_INPUT)
    # Offline there is no namespace to look at: like kube-inject, inject unless the pod
    # opts out or is excluded.
    labels = {c.NAMESPACE_LABEL: "enabled"}
    try:
        docs = load_documents(text, source=source)
        results = [
            inject_object(doc, config, labels, where=f"{source}: document {i + 1}")
            for i, doc in enumerate(docs)
        ]
    except (ManifestError, ValueError) as exc:
        _fail(str(exc), EXIT_INVALID_INPUT)
    if not quiet:
        for result in results:
            for label, decision in result.decisions:
                if not decision.inject:
                    typer.echo(f"vcl-inject: skipped {label}: {decision.reason}", err=True)
    objs = [r.obj for r in results]
    if objs:
        sys.stdout.write(dump_json(objs) if output is Output.json else dump_yaml(objs))


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"vcl-inject: error: {message}", err=True)
    raise typer.Exit(code)


def main() -> None:
    app()
