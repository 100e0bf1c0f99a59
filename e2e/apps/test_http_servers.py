"""HTTP servers users run (nginx with two worker processes, Node.js's http module on its
default `[::]` listener), each serving an injected client pod through VPP: client
processes one after another and in parallel, a 1 MiB answer, the server closing first
(HTTP/1.0), the client closing first; then wrk's figure (2 threads, 64 connections)
beside the same pair over the kernel."""

from __future__ import annotations

import hashlib
import os
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from e2e.apps.clients import CLOSE_FIRST, PY, curl, curl_many, wait_listening, wrk
from e2e.apps.conftest import need
from e2e.apps.lab import Node, Pod, stop
from e2e.apps.table import Row, record

BIG = 1 << 20
PORT = 8080
NOTES: list[str] = []  # what the row says beside "yes"

NGINX_CONF = """
daemon off;
user root;
master_process on;
worker_processes 2;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  keepalive_requests 100000;
  server {{
    listen {port};
    root {d}/www;
  }}
}}
"""

NODE_SERVER = """
const http = require('http');
const big = Buffer.alloc(BIG, 'x');
http.createServer((req, res) => {
  const body = req.url === '/big' ? big : Buffer.from('ok\\n');
  res.writeHead(200, {'Content-Type': 'text/plain', 'Content-Length': body.length});
  res.end(body);
}).listen(PORT, () => console.log('listening'));
""".replace("BIG", str(BIG)).replace("PORT", str(PORT))


def _nginx(tmp: Path) -> Callable[[Pod, bool], object]:
    www = tmp / "www"
    www.mkdir()
    (www / "index.html").write_text("ok\n")
    (www / "big").write_bytes(b"x" * BIG)
    os.chmod(tmp, 0o755)
    conf = tmp / "nginx.conf"
    conf.write_text(textwrap.dedent(NGINX_CONF.format(d=tmp, port=PORT)))
    exe = need("nginx")
    return lambda pod, vcl: pod.start(
        [exe, "-p", str(tmp), "-c", str(conf)], vcl=vcl, container="web"
    )


def _node(tmp: Path) -> Callable[[Pod, bool], object]:
    exe = need("node")
    return lambda pod, vcl: pod.start([exe, "-e", NODE_SERVER], vcl=vcl, container="web")


SERVERS = {"nginx": _nginx, "node http": _node}


@pytest.fixture(params=list(SERVERS))
def server(
    request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[str, Callable[[Pod, bool], object]]:
    return request.param, SERVERS[request.param](tmp_path)


@pytest.fixture
def pods(node: Node) -> Iterator[tuple[Pod, Pod]]:
    srv, cli = node.pod("srv"), node.pod("cli")
    yield srv, cli
    srv.delete()
    cli.delete()


def _functional(srv: Pod, cli: Pod) -> list[str]:
    """What failed, through VPP (empty: everything worked)."""
    host = srv.address(vcl=True)
    url = f"http://{host}:{PORT}/"
    rc, out = curl(cli, url, vcl=True)
    if rc != 0:
        return [f"first request: curl exit {rc}: {out}"]
    failures = []
    failures += [f"sequential: {f}" for f in curl_many(cli, url, 20, vcl=True)][:3]
    # VPP 26.06 refuses the odd connect of many client processes attaching at once
    # (docs/vpp-issues.md 7): counted and shown in the table, any other error fails.
    parallel = curl_many(cli, url, 32, vcl=True, parallel=8)
    refused = [f for f in parallel if f.startswith("curl exit 7:")]
    if refused:
        NOTES.append(f"{len(refused)} of 32 parallel connects refused")
    failures += [f"parallel: {f}" for f in parallel if f not in refused][:3]
    rc, out = curl(cli, f"http://[::ffff:{host}]:{PORT}/", vcl=True)  # IPv6 socket, v4 peer
    if rc != 0 or out != "ok\n":
        failures.append(f"v4-mapped connect: curl exit {rc}: {out[:200]}")
    rc, out = curl(cli, url + "big", vcl=True)
    if rc != 0 or hashlib.sha256(out.encode()).digest() != hashlib.sha256(b"x" * BIG).digest():
        failures.append(f"1 MiB answer: curl exit {rc}, {len(out)} bytes")
    for _ in range(5):
        rc, out = curl(cli, url, vcl=True, extra=["--http1.0"])
        if rc != 0 or out != "ok\n":
            failures.append(f"server closes first (HTTP/1.0): exit {rc}: {out[:200]}")
            break
    for _ in range(5):
        proc = cli.run([PY, "-c", CLOSE_FIRST, host, str(PORT), "/"], vcl=True, timeout=30)
        if proc.stdout.split() != ["HTTP/1.1", "200", "OK", "3"]:
            failures.append(f"client closes first: {proc.stdout.strip()} {proc.stderr[-300:]}")
            break
    failures += [f"after all that: {f}" for f in curl_many(cli, url, 3, vcl=True)]
    return failures


def test_http_server(
    server: tuple[str, Callable[[Pod, bool], object]], pods: tuple[Pod, Pod]
) -> None:
    name, start = server
    need("curl")
    need("wrk")
    srv, cli = pods
    proc = start(srv, True)
    try:
        wait_listening(srv, PORT)
        failures = _functional(srv, cli)
        if failures and failures[0].startswith("first request"):
            record(Row(name, f"NO: {failures[0][:120]}"))
            pytest.fail(failures[0])
        through = wrk(cli, f"http://{srv.address(vcl=True)}:{PORT}/", vcl=True)
        # VPP 26.06 resets the odd keep-alive connection under load (docs/vpp-issues.md):
        # up to 0.5% of requests (0.05-0.1% seen) is noted in the table; more fails.
        if through.error_rate > 0.005:
            failures.append(f"wrk -t2 -c64: {through.errors} errors: {through.output[-400:]}")
        if not srv.ldp_loaded("web"):
            failures.append(f"the server never loaded LDP: {srv.reports()}")
    finally:
        stop(proc)  # type: ignore[arg-type]
    proc = start(srv, False)
    try:
        wait_listening(srv, PORT)
        kernel = wrk(cli, f"http://{srv.address(vcl=False)}:{PORT}/", vcl=False)
    finally:
        stop(proc)  # type: ignore[arg-type]
    works = "yes" if not failures else f"NO: {failures[0][:120]}"
    if not failures and through.errors:
        NOTES.append(f"{through.errors} of {through.requests} wrk requests reset")
    if not failures and NOTES:
        works += f" ({'; '.join(NOTES)})"
    NOTES.clear()
    record(Row(name, works, "wrk -t2 -c64 req/s", through.requests_per_s, kernel.requests_per_s))
    record(Row(name, works, "wrk -t2 -c64 p90 ms", through.p90_ms, kernel.p90_ms))
    assert not failures, "\n".join(failures)
