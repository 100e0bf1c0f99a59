"""vcl-injector: the admission webhook (`serve`) and its certificates (`certs`).

Exit codes: 0 done; 1 cannot start (config, certificates, port); 2 bad command line.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from injector.core.config import ConfigError
from injector.kube.client import KubeConfigError, api_client
from injector.kube.webhook_certs import CertApplyError, CertTarget, apply_certs
from injector.webhook import certs

app = typer.Typer(add_completion=False, help=__doc__, no_args_is_help=True)


class LogFormat(StrEnum):
    text = "text"
    json = "json"


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="HTTPS port.")] = 8443,
    tls_cert: Annotated[Path | None, typer.Option(help="Serving certificate (PEM).")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="Its private key (PEM).")] = None,
    self_signed: Annotated[
        bool, typer.Option(help="Generate a throwaway certificate for a local run.")
    ] = False,
    config: Annotated[Path | None, typer.Option(help="Injector config (YAML), reloaded.")] = None,
    log_format: Annotated[LogFormat, typer.Option(help="Log line format.")] = LogFormat.json,
    reload_interval: Annotated[
        float, typer.Option(help="Seconds between checks of the config and TLS files.")
    ] = 2.0,
    noop_endpoint: Annotated[
        bool, typer.Option(hidden=True, help="Serve POST /noop (benchmarks).")
    ] = False,
) -> None:
    """Serve POST /mutate (AdmissionReview v1) with /healthz, /readyz and /metrics."""
    # Here, not at the top: the web stack (FastAPI, uvicorn, pydantic) is most of this
    # program's memory, and `certs` runs as a Job under a 128 MiB limit without it.
    from injector.webhook.server import ServeOptions, build, serve
    from injector.webhook.state import configure_logging
    from injector.webhook.tls import CertError

    configure_logging(log_format.value)
    options = ServeOptions(
        host=host,
        port=port,
        tls_cert=tls_cert,
        tls_key=tls_key,
        self_signed=self_signed,
        config=config,
        reload_interval=reload_interval,
        noop_endpoint=noop_endpoint,
    )
    try:
        server, watcher = build(options)
    except (ConfigError, CertError) as exc:
        typer.echo(f"vcl-injector: error: {exc}", err=True)
        raise typer.Exit(1) from exc
    asyncio.run(serve(server, watcher))
    if not server.started:
        typer.echo(f"vcl-injector: error: could not listen on {host}:{port}", err=True)
        raise typer.Exit(1)


@app.command("certs")
def certs_command(
    service: Annotated[str, typer.Option(help="The webhook's Service name.")],
    namespace: Annotated[str, typer.Option(help="The Service's namespace.")],
    out: Annotated[
        Path | None, typer.Option(help="Directory for ca.crt, tls.crt, tls.key.")
    ] = None,
    secret: Annotated[
        str | None, typer.Option(help="In-cluster: keep this TLS Secret valid (namespace above).")
    ] = None,
    webhook: Annotated[
        str | None,
        typer.Option(help="In-cluster: set this MutatingWebhookConfiguration's caBundle."),
    ] = None,
    kubeconfig: Annotated[str | None, typer.Option(envvar="KUBECONFIG")] = None,
    days: Annotated[int, typer.Option(help="Validity of the serving certificate.")] = 365,
) -> None:
    """Generate a CA and a serving certificate and print the caBundle; with --secret and
    --webhook (the install Job), keep them in the cluster instead (idempotent)."""
    names = certs.service_names(service, namespace)
    if (secret is None) != (webhook is None):
        raise typer.BadParameter("--secret and --webhook go together")
    if secret is None and out is None:
        raise typer.BadParameter("give --out DIR, or --secret and --webhook")
    bundle = certs.generate(names, days=days)
    if secret is not None and webhook is not None:
        target = CertTarget(namespace, secret, webhook, names)
        try:
            ca = apply_certs(
                api_client(kubeconfig),
                target,
                lambda: (bundle.ca_pem, bundle.cert_pem, bundle.key_pem),
            )
        except (KubeConfigError, CertApplyError) as exc:
            typer.echo(f"vcl-injector: error: {exc}", err=True)
            raise typer.Exit(1) from exc
        bundle = certs.CertBundle(ca, bundle.cert_pem, bundle.key_pem)
    if out is not None:
        try:
            certs.write(bundle, out)
        except OSError as exc:
            typer.echo(f"vcl-injector: error: cannot write to {out}: {exc.strerror}", err=True)
            raise typer.Exit(1) from exc
    typer.echo(bundle.ca_bundle)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
