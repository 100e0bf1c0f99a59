"""What the interposer tells the node agent (VCL_REPORT_SOCKET, one datagram per event):
"started" from every process the preload entered, with the container (VCL_CONTAINER, or
LDP_APP_NAME for pods injected before it), pid
and program; "ldp-loaded" when lazy LDP loads; "ldp-failed" with the loader's reason when
it cannot (a library missing in the app's image); "vpp-unreachable" when the app socket is
not there; "disabled" for a malformed rule. Nothing is sent without VCL_REPORT_SOCKET, and
a missing agent socket costs the app nothing (the program still works)."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

RULES = {"VCL_DUALSTACK_TEST": "1", "VCL_KERNEL_CIDRS": "127.0.0.1/32"}

PROGRAM = (
    "import socket, sys\n"
    "s = socket.socket()\n"
    "try:\n    s.connect(('127.0.0.2', 9))\nexcept OSError:\n    pass\n"
    "print('done')\n"
)


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[tuple[socket.socket, Path]]:
    path = tmp_path / "report.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    yield sock, path
    sock.close()


def reports(sock: socket.socket) -> list[list[str]]:
    found = []
    sock.settimeout(1)
    while True:
        try:
            found.append(sock.recv(1024).decode().split("\t"))
        except TimeoutError:
            return found


def run(build: Any, path: Path, extra: dict[str, str]) -> str:
    # as the injector sets them: VPP's app name names the pod too, reports the container
    env = {**RULES, "VCL_REPORT_SOCKET": str(path), "LDP_APP_NAME": "web-0b9e1c2a",
           "VCL_CONTAINER": "web", **extra}  # fmt: skip
    proc = build.run([sys.executable, "-c", PROGRAM], env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "done\n"
    return proc.stderr


def test_started_and_ldp_loaded(build: Any, agent: tuple[socket.socket, Path]) -> None:
    sock, path = agent
    run(build, path, {})
    got = reports(sock)
    assert got[0][:2] == ["vcl-report/1", "web"] and got[0][3:5] == ["python3", "started"]
    assert int(got[0][2]) > 1
    if build.vcl_side == "ldp-lazy":
        assert [r[4] for r in got] == ["started", "ldp-loaded"]
        assert got[1][5].endswith("libfake_ldp.so")
    else:
        assert [r[4] for r in got] == ["started"]


def test_ldp_that_cannot_load_is_reported_with_the_reason(
    build: Any, agent: tuple[socket.socket, Path], tmp_path: Path
) -> None:
    if build.vcl_side != "ldp-lazy":
        pytest.skip("only the lazy wiring loads LDP itself")
    sock, path = agent
    stderr = run(build, path, {"VCL_DUALSTACK_LDP": str(tmp_path / "libvcl_ldpreload.so")})
    assert "cannot load LDP" in stderr
    got = reports(sock)
    assert [r[4] for r in got] == ["started", "ldp-failed"]
    assert "libvcl_ldpreload.so: cannot open shared object file" in got[1][5]


def test_vpp_unreachable_and_disabled(
    build: Any, agent: tuple[socket.socket, Path], tmp_path: Path
) -> None:
    sock, path = agent
    if build.vcl_side == "ldp-lazy":
        run(build, path, {"VCL_VPP_SAPI_SOCKET": str(tmp_path / "gone.sock")})
        got = reports(sock)
        assert [r[4] for r in got] == ["started", "vpp-unreachable"]
        assert "gone.sock" in got[1][5]
    run(build, path, {"VCL_KERNEL_PORTS": "http"})
    assert [r[4] for r in reports(sock)] == ["disabled"]


def test_no_socket_no_report_and_no_harm(build: Any, tmp_path: Path) -> None:
    proc = build.run([sys.executable, "-c", PROGRAM],
                     {**RULES, "VCL_REPORT_SOCKET": str(tmp_path / "nobody.sock")})  # fmt: skip
    assert proc.returncode == 0 and proc.stdout == "done\n"


HALF_CLOSE = """
import socket, sys
srv = socket.create_server(("127.0.0.2", 0))
port = srv.getsockname()[1]
for _ in range(2):  # twice: said once per port
    c = socket.create_connection(("127.0.0.2", port))
    a, _ = srv.accept()
    c.shutdown(socket.SHUT_WR)
    a.shutdown(socket.SHUT_WR)
    assert a.recv(1) == b"" and c.recv(1) == b""
    c.close(); a.close()
k = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
k.shutdown(socket.SHUT_WR)  # on the kernel: nothing to say
srv2 = socket.create_server(("127.0.0.2", 0))  # Node's end() after the peer's end
c = socket.create_connection(("127.0.0.2", srv2.getsockname()[1]))
a, _ = srv2.accept()
c.close()
assert a.recv(1) == b""
a.shutdown(socket.SHUT_WR)  # the peer is gone: nobody waits for this EOF
print(port)
"""


def test_half_close_on_a_vpp_session_is_reported_once_per_port_with_the_fix(
    build: Any, agent: tuple[socket.socket, Path]
) -> None:
    """VPP's app-to-app sessions have no half-close (a protocol waiting for the peer's
    EOF hangs): shutdown(SHUT_WR) on a moved socket is reported, naming the server's port
    and the annotation that keeps it on the kernel; client and accepted side name the same
    port, so one report is sent; a shutdown after the peer's own EOF is not one."""
    sock, path = agent
    kernel = socket.create_server(("127.0.0.1", 0))
    env = {**RULES, "VCL_REPORT_SOCKET": str(path), "LDP_APP_NAME": "web"}
    try:
        proc = build.run([sys.executable, "-c", HALF_CLOSE, str(kernel.getsockname()[1])], env)
    finally:
        kernel.close()
    assert proc.returncode == 0, proc.stderr
    port = proc.stdout.strip()
    said = [r for r in reports(sock) if r[4] == "half-close"]
    assert len(said) == 1, said  # not the shutdown after the peer's close
    assert said[0][5].startswith(f"port {port}: shutdown(SHUT_WR) on a VPP session")
    assert f'vcl.io/kernel-ports: "{port}"' in said[0][5]
    logged = [x for x in build.decisions(proc.stderr) if "half-close" in x]
    assert len(logged) == 1 and f"port {port}" in logged[0], proc.stderr


def test_pods_injected_before_vcl_container_report_ldp_app_name(
    build: Any, agent: tuple[socket.socket, Path]
) -> None:
    sock, path = agent
    run(build, path, {"LDP_APP_NAME": "api", "VCL_CONTAINER": ""})
    assert reports(sock)[0][1] == "api"
