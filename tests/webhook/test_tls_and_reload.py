"""TLS for real: uvicorn on a free port with a generated certificate, a client that
verifies the CA; certificate rotation on disk seen by the next handshake without a
restart; config reload (a bad file is rejected, the old config stays); `vcl-injector
certs` output; graceful shutdown lets an in-flight request finish on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from typer.testing import CliRunner
from webhook_process import free_port, start_webhook

from injector.cli.injector import app as cli
from injector.webhook import certs
from injector.webhook.server import FileWatcher, ServeOptions, build, serve
from injector.webhook.tls import ReloadingTLS

K8S = Path(__file__).resolve().parents[1] / "fixtures" / "k8s"  # e2e/record/k8s.py made them


def peer_cert(port: int, ca: Path) -> x509.Certificate:
    ctx = ssl.create_default_context(cafile=str(ca))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def write_certs(directory: Path) -> Path:
    certs.write(certs.generate(["localhost", "127.0.0.1"]), directory)
    return directory


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[int, Path, FileWatcher]]:
    live = tmp_path / "live"
    write_certs(live)
    port = free_port()
    options = ServeOptions(
        host="127.0.0.1",
        port=port,
        tls_cert=live / "tls.crt",
        tls_key=live / "tls.key",
        reload_interval=0.05,
    )
    server, watcher = build(options)
    thread = threading.Thread(target=asyncio.run, args=(serve(server, watcher),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    yield port, live, watcher
    server.should_exit = True
    thread.join(timeout=10)


def test_mutate_over_verified_tls(running: tuple[int, Path, FileWatcher]) -> None:
    port, live, _ = running
    review = json.loads((K8S / "admission-review-pod-create.json").read_text())
    with httpx.Client(verify=ssl.create_default_context(cafile=str(live / "ca.crt"))) as c:
        reply = c.post(f"https://localhost:{port}/mutate", json=review)
        assert reply.status_code == 200 and reply.json()["response"]["patchType"] == "JSONPatch"
        assert c.get(f"https://localhost:{port}/readyz").status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"https://localhost:{port}/healthz")  # system CAs do not know our CA


def test_rotated_certificate_is_served_without_restart(
    running: tuple[int, Path, FileWatcher], tmp_path: Path
) -> None:
    port, live, watcher = running
    first = peer_cert(port, live / "ca.crt")
    fresh = write_certs(tmp_path / "fresh")
    # Like a Secret volume update: the new files replace the old ones atomically.
    for name in ("tls.key", "tls.crt", "ca.crt"):
        os.replace(fresh / name, live / name)
    deadline = time.monotonic() + 10
    while True:
        try:
            second = peer_cert(port, live / "ca.crt")
            break
        except ssl.SSLError:  # still the old cert, signed by the old CA
            assert time.monotonic() < deadline, "new certificate never served"
            time.sleep(0.05)
    assert second.serial_number != first.serial_number
    assert watcher.state.metrics.cert_reloads.labels("success")._value.get() >= 1


def test_broken_new_certificate_keeps_the_old_one(tmp_path: Path) -> None:
    live = write_certs(tmp_path / "live")
    tls = ReloadingTLS(live / "tls.crt", live / "tls.key")
    before = tls.current
    (live / "tls.key").write_text("not a key")
    watcher = FileWatcher(build_state(), ServeOptions(), tls)
    watcher.check()
    assert tls.current is before
    assert watcher.state.metrics.cert_reloads.labels("error")._value.get() == 1


def build_state():  # type: ignore[no-untyped-def]
    from injector.webhook.state import WebhookState

    return WebhookState()


def test_config_reload_rejects_bad_files_and_keeps_the_old_config(tmp_path: Path) -> None:
    live = write_certs(tmp_path / "live")
    config = tmp_path / "config.yaml"
    config.write_text("runtime: {image: first:1}\n")
    options = ServeOptions(tls_cert=live / "tls.crt", tls_key=live / "tls.key", config=config)
    _, watcher = build(options)
    assert watcher.state.config.runtime.image == "first:1"
    config.write_text("runtime: {image: second:1}\nnotAKey: 1\n")
    os.utime(config, ns=(time.time_ns(), time.time_ns() + 1_000_000_000))
    watcher.check()
    assert watcher.state.config.runtime.image == "first:1"
    assert watcher.state.metrics.config_reloads.labels("error")._value.get() == 1
    config.write_text("runtime: {image: third:1}\n")
    os.utime(config, ns=(time.time_ns(), time.time_ns() + 2_000_000_000))
    watcher.check()
    assert watcher.state.config.runtime.image == "third:1"
    assert watcher.state.metrics.config_reloads.labels("success")._value.get() == 1


def test_certs_command_writes_files_and_prints_the_ca_bundle(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["certs", "--service", "vcl-injector", "--namespace", "vcl-system", "--out", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    import base64

    assert base64.b64decode(result.stdout.strip()) == (tmp_path / "ca.crt").read_bytes()
    assert (tmp_path / "tls.key").stat().st_mode & 0o777 == 0o600
    cert = x509.load_pem_x509_certificate((tmp_path / "tls.crt").read_bytes())
    names = cert.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.DNSName)
    assert "vcl-injector.vcl-system.svc" in names
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.crt").read_bytes())
    cert.verify_directly_issued_by(ca)


def test_serve_without_certificates_fails_clearly() -> None:
    result = CliRunner().invoke(cli, ["serve", "--port", str(free_port())])
    assert result.exit_code == 1
    assert "--tls-cert" in result.stderr and "--self-signed" in result.stderr


def test_sigterm_lets_the_in_flight_request_finish(tmp_path: Path) -> None:
    port = free_port()
    proc = start_webhook(port, "--log-format", "text", stderr=subprocess.DEVNULL)
    try:
        review = (K8S / "admission-review-pod-create.json").read_bytes()

        def slow_body() -> Iterator[bytes]:
            yield review[:100]
            proc.send_signal(signal.SIGTERM)  # the request is in flight now
            time.sleep(0.5)
            yield review[100:]

        reply = httpx.post(
            f"https://127.0.0.1:{port}/mutate",
            content=slow_body(),
            verify=False,
            timeout=10,
            headers={"content-length": str(len(review))},
        )
        assert reply.status_code == 200 and reply.json()["response"]["allowed"] is True
        # uvicorn re-raises the captured SIGTERM once it has shut down gracefully.
        assert proc.wait(timeout=15) in (0, -signal.SIGTERM)
    finally:
        proc.kill()
        proc.wait()
