"""The interposer's CI scenarios with stock LDP and a real VPP behind it.

Covers, in the stacked and the lazy wiring: every C test program scenario (127.0.0.1 on the
kernel, VCL_E2E_MOVED and VCL_E2E_MOVED6 through VPP), the asyncio echo server/clients,
and a program whose sockets are all loopback keeping the kernel. Skipped without
VPP_LDP_LIB + a VPP (see conftest.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from injector.core.annotations import parse_settings
from injector.core.config import InjectorConfig
from injector.core.render import VclConfParams, render_vcl_conf

CI_DIR = Path(__file__).resolve().parents[2] / "tests" / "interposer"
UDP_BETWEEN_APPS = (
    "VPP 26.06 drops UDP between two VCL apps on its own address (the reply leaves the "
    "cut-through and ip4-local drops it as 'spoofed local-address'); UDP to other hosts "
    "is not affected"
)


def test_c_scenario(build, scenario: str) -> None:
    if scenario == "ipv6" and not build.moved6:
        pytest.skip("VCL_E2E_MOVED6 is not set to an IPv6 address of VPP's interface")
    if scenario == "udp":
        pytest.skip(UDP_BETWEEN_APPS)
    proc = build.run([str(build.c_test), scenario], {**build.rules, "VCL_DUALSTACK_DEBUG": "1"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"ok {scenario}"


def test_listen_both(build) -> None:
    env = {**build.rules, "VCL_KERNEL_LISTEN": "both"}
    proc = build.run([str(build.c_test), "listen_both"], env)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("kernel_listen", ["vcl", "both"])
def test_ipv6_wildcard_listener_takes_ipv4_clients(build, kernel_listen: str) -> None:
    """A [::] listener (IPV6_V6ONLY off) reached by an IPv4 and an IPv6 client program
    through VPP: VCL's listener serves one family, the interposer adds the IPv4 one."""
    if not build.moved6:
        pytest.skip("VCL_E2E_MOVED6 is not set to an IPv6 address of VPP's interface")
    env = {**build.rules, "VCL_DUALSTACK_DEBUG": "1"}
    if kernel_listen == "both":
        env["VCL_KERNEL_LISTEN"] = "both"
    proc = build.run([str(build.c_test), "listen_dual"], env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok listen_dual"


def test_asyncio_echo_through_vpp(build, python: str) -> None:
    """asyncio clients to the moved address reach the peer (another app) through VPP."""
    port = build.rules["DUALSTACK_TEST_PEER_PORT"]
    argv = [python, str(CI_DIR / "asyncio_echo.py"), "--connect", port, build.moved]
    proc = build.run(argv, build.rules)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"server": None, "clients": {build.moved: [2]}}


def test_asyncio_echo_on_loopback(build, python: str) -> None:
    host = "127.0.0.1"
    proc = build.run([python, str(CI_DIR / "asyncio_echo.py"), host, host], build.rules)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"server": 1, "clients": {host: [1]}}


def test_loopback_only_program_stays_on_the_kernel(build, python: str) -> None:
    proc = build.run([python, str(CI_DIR / "path_probe.py"), "udp", "127.0.0.2:9", "[::1]:9"])
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [1, 1]


HALF_CLOSE = """
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
s.sendall(b"x")
assert s.recv(1) == b"x"
s.shutdown(socket.SHUT_WR)
try:
    print("eof" if s.recv(1) == b"" else "data")
except TimeoutError:
    print("no eof")
"""


@pytest.mark.xfail(
    strict=True,
    reason="VPP 26.06's cut-through transport (application_local.c) has no half_close: "
    "shutdown(SHUT_WR) between two VCL apps on one VPP never reaches the peer",
)
def test_half_close_between_apps(build, python: str) -> None:
    """What a client that half-closes (HTTP/1.0 style) sees from a VCL peer on the node."""
    port = build.rules["DUALSTACK_TEST_PEER_PORT"]
    proc = build.run([python, "-c", HALF_CLOSE, build.moved, port], build.rules)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "eof"


ACCEPT_ELSEWHERE = """
import json, socket, sys, threading
srv = socket.socket()
srv.bind((sys.argv[1], 0))
srv.listen(4)
print(srv.getsockname()[1], flush=True)
seen = {}
def serve():
    try:
        conn, _ = srv.accept()
        seen["got"] = conn.recv(4).decode()
        conn.sendall(b"pong")
    except OSError as e:
        seen["error"] = e.strerror
t = threading.Thread(target=serve)
t.start()
t.join(20)
print(json.dumps(seen), flush=True)
"""

CLIENT = """
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
s.sendall(b"ping")
print(s.recv(4).decode())
"""


@pytest.mark.parametrize("annotations", [{}, {"vcl.io/workers": "false"}])
def test_accept_in_another_thread(
    build, python: str, tmp_path: Path, annotations: dict[str, str]
) -> None:
    """A server that listens in its main thread and accepts in another (a thread pool's
    shape), with the vcl.conf the agent writes: by default (multi-thread-workers, where
    VCL cannot move the listening session and the interposer gives the accepting thread a
    VCL listener of its own), and with one shared worker (vcl.io/workers=false)."""
    settings = parse_settings(annotations, InjectorConfig())
    conf = tmp_path / "vcl.conf"
    conf.write_text(render_vcl_conf(VclConfParams.of(settings, build.app_socket)))
    server = build.start([python, "-c", ACCEPT_ELSEWHERE, build.moved], {"VCL_CONFIG": str(conf)})
    try:
        assert server.stdout is not None
        port = server.stdout.readline().strip()
        assert port.isdigit(), server.stderr.read() if server.stderr else ""
        client = build.run([python, "-c", CLIENT, build.moved, port], build.rules)
        seen = json.loads(server.stdout.readline())
    finally:
        server.kill()
        server.wait()
    assert seen == {"got": "ping"}
    assert client.returncode == 0 and client.stdout.strip() == "pong", client.stderr


def test_many_short_lived_apps_leave_vpp_answering(build, python: str) -> None:
    """Forty programs in a row that each move one connection and exit, and every one
    gets its echo: VPP 26.06 hung for good after about twenty app-socket connections
    that closed without attaching, which the lazy-LDP check used to make per program."""
    port = build.rules["DUALSTACK_TEST_PEER_PORT"]
    argv = [python, "-c", CLIENT, build.moved, port]
    for _ in range(40):
        proc = build.run(argv, build.rules)
        assert proc.returncode == 0 and proc.stdout.strip() == "ping", proc.stderr
