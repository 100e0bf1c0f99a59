"""Mode `local`: the interposer sends a connection to VCL only when the node's endpoint
table (written by injector/agent/endpoints.py) lists its destination; everything else
stays on the kernel, as if the pod were not injected. The table is found through the env
file's VCL_ENDPOINTS (a name beside the env file), read again when it is replaced, and a
missing or malformed table means "kernel for everything", said once. Explicit kernel
rules still win; listeners stay on both stacks; UDP listeners stay on the kernel.

Here 127.0.0.2 stands for a pod IP (VCL_DUALSTACK_TEST lets loopback move)."""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from injector.agent.endpoints import UDP, Endpoint, encode, fnv1a, publish

PROBE = str(Path(__file__).resolve().parent / "table_probe.py")
LISTEN_PROBE = str(Path(__file__).resolve().parent / "path_probe.py")
KERNEL, VCL, BOTH = 1, 2, 3
POD = ipaddress.ip_address("127.0.0.2")


@pytest.fixture
def pod_dir(tmp_path: Path) -> Path:
    d = tmp_path / "pods" / "uid-1"
    d.mkdir(parents=True)
    (d / "vcl.env").write_text("VCL_APP_NAMESPACE_ID=ns\nVCL_ENDPOINTS=endpoints\n")
    return d


@pytest.fixture
def servers() -> Iterator[tuple[int, int]]:
    """Two TCP listeners on the "pod IP": one VPP serves, one it does not."""
    a = socket.create_server(("127.0.0.2", 0))
    b = socket.create_server(("127.0.0.2", 0))
    yield a.getsockname()[1], b.getsockname()[1]
    a.close()
    b.close()


def env_for(pod_dir: Path, **extra: str) -> dict[str, str]:
    return {
        "VCL_DUALSTACK_TEST": "1",
        "VCL_ENV_FILE": str(pod_dir / "vcl.env"),
        "VCL_DUALSTACK_DEBUG": "1",
        **extra,
    }


def write(pod_dir: Path, endpoints: list[Endpoint], generation: int) -> None:
    assert publish(encode(endpoints, generation), pod_dir.parent.parent, [pod_dir]) == []


def probe(build: Any, python: str, env: dict[str, str], lines: list[str]) -> tuple[list[int], str]:
    proc = build.run([python, PROBE], env) if not lines else subprocess.run(
        [python, PROBE], env=build.env(env), input="".join(f"{x}\n" for x in lines),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return [int(x) for x in proc.stdout.split()], proc.stderr


def test_only_what_the_table_lists_goes_to_vcl(
    build: Any, python: str, pod_dir: Path, servers: tuple[int, int]
) -> None:
    served, other = servers
    write(pod_dir, [Endpoint(POD, served), Endpoint(POD, 5353, UDP)], generation=7)
    paths, stderr = probe(build, python, env_for(pod_dir), [
        f"tcp 127.0.0.2 {served}", f"tcp 127.0.0.2 {other}", "udp 127.0.0.2 5353",
        f"udp 127.0.0.2 {served}",  # the same port over UDP is not listed
        f"tcp ::ffff:127.0.0.2 {served}",  # v4-mapped: the IPv4 entry
    ])  # fmt: skip
    assert paths == [VCL, KERNEL, VCL, KERNEL, VCL]
    log = build.decisions(stderr)
    assert any(f"127.0.0.2:{served} -> vcl (in the endpoint table (generation 7))" in x
               for x in log), log  # fmt: skip
    assert any(f"127.0.0.2:{other} -> kernel (not in the endpoint table (generation 7))" in x
               for x in log), log  # fmt: skip


def test_explicit_kernel_rules_win_over_the_table(
    build: Any, python: str, pod_dir: Path, servers: tuple[int, int]
) -> None:
    served, _ = servers
    write(pod_dir, [Endpoint(POD, served)], generation=1)
    env = env_for(pod_dir, VCL_KERNEL_PORTS=str(served))
    paths, _ = probe(build, python, env, [f"tcp 127.0.0.2 {served}"])
    assert paths == [KERNEL]


def test_a_table_replaced_under_a_running_program_is_used_at_the_next_connect(
    build: Any, python: str, pod_dir: Path, servers: tuple[int, int]
) -> None:
    served, other = servers
    write(pod_dir, [Endpoint(POD, served)], generation=1)
    proc = subprocess.Popen([python, PROBE], env=build.env(env_for(pod_dir)), text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stdin and proc.stdout

    def ask(port: int) -> int:
        assert proc.stdin and proc.stdout
        proc.stdin.write(f"tcp 127.0.0.2 {port}\n")
        proc.stdin.flush()
        return int(proc.stdout.readline())

    try:
        assert [ask(served), ask(other)] == [VCL, KERNEL]
        write(pod_dir, [Endpoint(POD, other)], generation=2)  # the listener moved
        assert [ask(served), ask(other)] == [KERNEL, VCL]
        (pod_dir / "endpoints").unlink()  # gone: kernel for everything
        assert [ask(served), ask(other)] == [KERNEL, KERNEL]
        write(pod_dir, [Endpoint(POD, served)], generation=3)
        assert [ask(served), ask(other)] == [VCL, KERNEL]
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    assert proc.stderr
    log = build.decisions(proc.stderr.read())
    gone = [x for x in log if "stays on the kernel until it is fixed" in x]
    assert len(gone) == 1 and "No such file or directory" in gone[0], log
    assert any("readable again" in x for x in log), log


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"", "empty file"),
        (b"VCLEPT1\0" + b"\1", "not an endpoint table"),  # shorter than the header
        (b"GARBAGE!" + bytes(24), "not an endpoint table"),
        ("truncated", "size does not match its count"),
        ("flipped", "checksum mismatch"),
        ("unsorted", "entries not sorted"),
    ],
)
def test_a_malformed_table_keeps_everything_on_the_kernel_with_one_line(
    build: Any, python: str, pod_dir: Path, servers: tuple[int, int], content: Any, said: str
) -> None:
    served, _ = servers
    good = encode([Endpoint(POD, served), Endpoint(POD, served + 1 if served < 65535 else 1)], 4)
    if content == "truncated":
        content = good[:-1]
    elif content == "flipped":
        content = good[:-1] + bytes([good[-1] ^ 1])
    elif content == "unsorted":
        body = good[52:72] + good[32:52]
        content = good[:28] + struct.pack("<I", fnv1a(body)) + body
    (pod_dir / "endpoints").write_bytes(content)
    paths, stderr = probe(build, python, env_for(pod_dir), [f"tcp 127.0.0.2 {served}"] * 3)
    assert paths == [KERNEL] * 3
    said_lines = [x for x in build.decisions(stderr) if "stays on the kernel" in x]
    assert len(said_lines) == 1 and said in said_lines[0], stderr


def test_listeners_stay_on_both_stacks_and_udp_listeners_on_the_kernel(
    build: Any, python: str, pod_dir: Path
) -> None:
    write(pod_dir, [], generation=1)
    env = env_for(pod_dir, VCL_KERNEL_LISTEN="both")
    proc = build.run([python, LISTEN_PROBE, "tcp-listen", "0.0.0.0:0"], env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"[{BOTH}]"
    proc = build.run([python, LISTEN_PROBE, "udp", "127.0.0.2:9"], env)
    assert proc.stdout.strip() == f"[{KERNEL}]", proc.stderr


def test_without_vcl_endpoints_the_table_is_not_used(
    build: Any, python: str, pod_dir: Path, servers: tuple[int, int]
) -> None:
    """Mode calico-vpp: no VCL_ENDPOINTS in the env file, everything goes to VPP."""
    _, other = servers
    (pod_dir / "vcl.env").write_text("VCL_APP_NAMESPACE_ID=ns\n")
    paths, _ = probe(build, python, env_for(pod_dir), [f"tcp 127.0.0.2 {other}"])
    assert paths == [VCL]
    assert not os.path.exists(pod_dir / "endpoints")


LISTEN_AND_SERVE = """
import socket, sys
s = socket.create_server(("0.0.0.0", int(sys.argv[1])))
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
a, _ = s.accept()
c.sendall(b"kernel")
print(a.recv(16).decode())
"""


def test_a_listener_whose_vpp_side_is_refused_keeps_its_kernel_side(
    build: Any, python: str
) -> None:
    """A second replica on the node: VPP's table already has the port, so the VCL side of
    the both-stacks listener fails; the app must still listen (on the kernel), not crash
    with EADDRINUSE."""
    if build.vcl_side == "libc":
        pytest.skip("needs the fake LDP, which can refuse a port as VPP does")
    with socket.socket() as probe_port:
        probe_port.bind(("127.0.0.1", 0))
        port = probe_port.getsockname()[1]
    env = {"VCL_DUALSTACK_TEST": "1", "VCL_KERNEL_CIDRS": "127.0.0.1/32",
           "VCL_KERNEL_LISTEN": "both", "FAKE_LDP_TAKEN_PORT": str(port)}  # fmt: skip
    proc = build.run([python, "-c", LISTEN_AND_SERVE, str(port)], env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "kernel"
    (said,) = [x for x in build.decisions(proc.stderr) if "VPP refused" in x]
    assert "Address already in use" in said and "on the kernel only" in said
