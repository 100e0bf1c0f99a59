"""Run the webhook: uvicorn with a reloading TLS context, and a watcher for config/certs."""

from __future__ import annotations

import asyncio
import gc
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from injector.core.config import ConfigError, load_config
from injector.webhook import certs
from injector.webhook.app import create_app
from injector.webhook.state import WebhookState
from injector.webhook.tls import CertError, ReloadingTLS

log = logging.getLogger("vcl_injector")


@dataclass(frozen=True)
class ServeOptions:
    host: str = "0.0.0.0"  # the API server reaches the webhook from any address
    port: int = 8443
    tls_cert: Path | None = None
    tls_key: Path | None = None
    self_signed: bool = False
    config: Path | None = None
    reload_interval: float = 2.0
    # Kubernetes' default terminationGracePeriodSeconds is 30.
    graceful_shutdown: float = 20.0
    noop_endpoint: bool = False


class FileWatcher:
    """Polls the config file and the TLS files; a bad new file never replaces a good one."""

    def __init__(self, state: WebhookState, options: ServeOptions, tls: ReloadingTLS) -> None:
        self.state, self.options, self.tls = state, options, tls
        self._config_seen = self._config_signature()

    def _config_signature(self) -> tuple[int, int, int] | None:
        path = self.options.config
        if path is None:
            return None
        try:
            st = path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def check(self) -> None:
        self._check_config()
        try:
            if self.tls.reload_if_changed():
                self.state.metrics.cert_reloads.labels("success").inc()
                log.info("TLS certificate reloaded", extra={"fields": {"cert": str(self.tls.cert)}})
        except CertError as exc:
            self.state.metrics.cert_reloads.labels("error").inc()
            log.error("TLS reload failed, keeping the current certificate: %s", exc)

    def _check_config(self) -> None:
        seen = self._config_signature()
        if seen == self._config_seen or self.options.config is None:
            return
        self._config_seen = seen
        try:
            self.state.config = load_config(self.options.config)
        except ConfigError as exc:
            self.state.metrics.config_reloads.labels("error").inc()
            log.error("config reload rejected, keeping the current config: %s", exc)
            return
        self.state.metrics.config_reloads.labels("success").inc()
        log.info("config reloaded", extra={"fields": {"config": str(self.options.config)}})

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.options.reload_interval)
            self.check()


def self_signed_files(host: str) -> tuple[Path, Path]:
    """A throwaway CA-signed cert for a local run (`serve --self-signed`)."""
    out = Path(tempfile.mkdtemp(prefix="vcl-injector-"))
    names = ["localhost", "127.0.0.1", "::1"] + ([host] if host not in ("0.0.0.0", "::") else [])
    bundle = certs.generate(names)
    certs.write(bundle, out)
    log.info("self-signed certificate written", extra={"fields": {"dir": str(out)}})
    return out / "tls.crt", out / "tls.key"


def build(options: ServeOptions) -> tuple[uvicorn.Server, FileWatcher]:
    """Load config and certs (raising ConfigError/CertError), and make the server."""
    state = WebhookState(config=load_config(options.config))
    if options.self_signed:
        cert, key = self_signed_files(options.host)
    elif options.tls_cert and options.tls_key:
        cert, key = options.tls_cert, options.tls_key
    else:
        raise CertError("give --tls-cert and --tls-key, or --self-signed for a local run")
    tls = ReloadingTLS(cert, key)
    app = create_app(state, noop_endpoint=options.noop_endpoint)
    config = uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(options.graceful_shutdown),
        lifespan="off",
    )
    config.load()
    config.ssl = tls.server_context
    # Everything loaded so far lives as long as the process: keep the cyclic GC from
    # re-scanning it on every collection (each admission allocates thousands of dicts).
    gc.collect()
    gc.freeze()
    return uvicorn.Server(config), FileWatcher(state, options, tls)


async def serve(server: uvicorn.Server, watcher: FileWatcher) -> None:
    """Serve until SIGTERM/SIGINT; uvicorn then lets in-flight requests finish."""
    task = asyncio.create_task(watcher.run())
    try:
        await server.serve()
    finally:
        task.cancel()
