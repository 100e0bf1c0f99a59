"""Lazy LDP: VCL_DUALSTACK_LDP names the library to dlopen at the first socket that moves.

Covers: with libc standing in for LDP, the moved path works as when stacked; an LDP that
cannot be loaded, or a VPP app socket that is not there (a missing file, an abstract name
nothing listens on; from vcl.conf or VCL_VPP_SAPI_SOCKET), leaves the program on the
kernel with one stderr line; an app socket that is there lets the load go ahead, and is
never connected to by the check (VPP 26.06 hangs after a score of connections that close
without attaching). Loopback-only programs never load LDP.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

PROBE = str(Path(__file__).resolve().parent / "path_probe.py")
TEST = {"VCL_DUALSTACK_TEST": "1", "VCL_DUALSTACK_LDP": "libc.so.6"}
KERNEL, VCL = 1, 2


def run_probe(build, python: str, env: dict[str, str]) -> tuple[list[int], list[str]]:
    proc = build.run([python, PROBE, "udp", "127.0.0.2:9", "127.0.0.2:10"], env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), proc.stderr.splitlines()


def test_c_program_with_libc_as_the_lazily_loaded_ldp(build) -> None:
    env = {**build.rules, **TEST, "VCL_DUALSTACK_DEBUG": "1"}
    for scenario in ("tcp_blocking", "epoll", "fork", "threads"):
        proc = build.run([str(build.c_test), scenario], env)
        assert proc.returncode == 0, proc.stderr
        assert "loaded LDP from libc.so.6" in proc.stderr


def test_unloadable_ldp_keeps_the_kernel_with_one_line(build, python: str) -> None:
    paths, lines = run_probe(build, python, {**TEST, "VCL_DUALSTACK_LDP": "/nonexistent/ldp.so"})
    assert paths == [KERNEL, KERNEL]
    assert len(lines) == 1
    assert "cannot load LDP" in lines[0] and "VCL path disabled" in lines[0]


def test_loopback_only_program_never_loads_ldp(build, python: str) -> None:
    env = {"VCL_DUALSTACK_LDP": "/nonexistent/ldp.so", "VCL_DUALSTACK_DEBUG": "1"}
    paths, lines = run_probe(build, python, env)
    assert paths == [KERNEL, KERNEL]
    assert not any("LDP" in x for x in lines)


@pytest.fixture
def vcl_dir(tmp_path: Path) -> Path:
    return tmp_path


def write_conf(directory: Path, sock: str) -> dict[str, str]:
    conf = directory / "vcl.conf"
    conf.write_text(f"vcl {{\n  app-socket-api {sock}\n  use-mq-eventfd\n}}\n")
    return {"VCL_CONFIG": str(conf)}


@pytest.fixture
def listening_seqpacket(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "app_ns_sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        s.bind(str(path))
        s.listen(4)
        yield path
        assert_never_connected(s)


def assert_never_connected(listener: socket.socket) -> None:
    """VPP 26.06 keeps every app-socket connection that closes before attaching, and its
    main thread blocks for good after a score of them: the check must only look."""
    listener.setblocking(False)
    with pytest.raises(BlockingIOError):
        listener.accept()


def test_unreachable_app_socket_in_vcl_conf(build, python: str, vcl_dir: Path) -> None:
    env = {**TEST, **write_conf(vcl_dir, str(vcl_dir / "missing"))}
    paths, lines = run_probe(build, python, env)
    assert paths == [KERNEL, KERNEL]
    assert len(lines) == 1
    assert "VPP unreachable" in lines[0] and str(vcl_dir / "missing") in lines[0]


def test_unreachable_app_socket_from_env_wins_over_conf(
    build, python: str, vcl_dir: Path, listening_seqpacket: Path
) -> None:
    env = {**TEST, **write_conf(vcl_dir, str(listening_seqpacket))}
    env["VCL_VPP_SAPI_SOCKET"] = "abstract:vcl-dualstack-test-nobody"
    paths, lines = run_probe(build, python, env)
    assert paths == [KERNEL, KERNEL]
    assert len(lines) == 1 and "VPP unreachable" in lines[0]


def test_answering_app_socket_lets_ldp_load(
    build, python: str, vcl_dir: Path, listening_seqpacket: Path
) -> None:
    env = {**TEST, **write_conf(vcl_dir, str(listening_seqpacket))}
    paths, lines = run_probe(build, python, env)
    assert paths == [VCL, VCL]
    assert lines == []


def test_the_app_socket_is_read_as_vcl_reads_its_config(
    build, python: str, vcl_dir: Path, listening_seqpacket: Path
) -> None:
    """A commented-out line, or a longer word that only contains the key, is not it; a
    comment after the value is not part of it."""
    conf = vcl_dir / "vcl.conf"
    conf.write_text(
        "vcl {\n"
        f"  # app-socket-api {vcl_dir / 'old'}\n"
        f"  x-app-socket-api {vcl_dir / 'other'}\n"
        f"  app-socket-api {listening_seqpacket}  # the pod's\n"
        "}\n"
    )
    paths, lines = run_probe(build, python, {**TEST, "VCL_CONFIG": str(conf)})
    assert paths == [VCL, VCL]
    assert lines == []


def test_answering_abstract_app_socket(build, python: str) -> None:
    name = f"vcl-dualstack-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        # VPP 26.06 leaves the name's last character out of an abstract address; so do we.
        s.bind("\0" + name[:-1])
        s.listen(4)
        env = {**TEST, "VCL_VPP_SAPI_SOCKET": f"abstract:{name},netns_name=ignored"}
        paths, lines = run_probe(build, python, env)
        assert_never_connected(s)
    assert paths == [VCL, VCL]
    assert lines == []


def test_abstract_name_bound_but_not_listening(build, python: str) -> None:
    name = f"vcl-dualstack-idle-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        s.bind("\0" + name[:-1])
        env = {**TEST, "VCL_VPP_SAPI_SOCKET": f"abstract:{name}"}
        paths, lines = run_probe(build, python, env)
    assert paths == [KERNEL, KERNEL]
    assert len(lines) == 1 and "nothing listens" in lines[0]


def test_a_file_that_is_not_a_socket(build, python: str, vcl_dir: Path) -> None:
    (vcl_dir / "plain").write_text("")
    env = {**TEST, **write_conf(vcl_dir, str(vcl_dir / "plain"))}
    paths, lines = run_probe(build, python, env)
    assert paths == [KERNEL, KERNEL]
    assert len(lines) == 1 and "not a socket" in lines[0]


SHOW_ENV = (
    "import os, json; print(json.dumps({k: os.environ.get(k) for k in "
    "('VCL_APP_NAMESPACE_ID', 'VCL_APP_NAMESPACE_SECRET', 'LD_PRELOAD_EXTRA')}))"
)


def env_seen(build, python: str, env: dict[str, str]) -> dict[str, str | None]:
    proc = build.run([python, "-c", SHOW_ENV], env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_agent_env_file_reaches_the_app_before_ldp_loads(
    build, python: str, tmp_path: Path
) -> None:
    """The pod spec carries only VCL_ENV_FILE; the namespace id and secret (which VCL
    reads from the environment) come from the agent's file, and only those two keys."""
    env_file = tmp_path / "vcl.env"
    env_file.write_text(
        "VCL_APP_NAMESPACE_ID=vcl-0b7c2c5e-5a8e-4c1e-9d7a-3f9e1b2c4d5e\n"
        "VCL_APP_NAMESPACE_SECRET=1234567890123\n"
        "LD_PRELOAD_EXTRA=/evil.so\n"
        "VCL_APP_NAMESPACE_BAD\n"
    )
    seen = env_seen(build, python, {**TEST, "VCL_ENV_FILE": str(env_file)})
    assert seen == {
        "VCL_APP_NAMESPACE_ID": "vcl-0b7c2c5e-5a8e-4c1e-9d7a-3f9e1b2c4d5e",
        "VCL_APP_NAMESPACE_SECRET": "1234567890123",
        "LD_PRELOAD_EXTRA": None,
    }
    # An explicit value wins; a missing file changes nothing and prints nothing.
    explicit = {**TEST, "VCL_ENV_FILE": str(env_file), "VCL_APP_NAMESPACE_ID": "mine"}
    assert env_seen(build, python, explicit)["VCL_APP_NAMESPACE_ID"] == "mine"
    proc = build.run([python, "-c", SHOW_ENV], {**TEST, "VCL_ENV_FILE": str(tmp_path / "none")})
    assert json.loads(proc.stdout)["VCL_APP_NAMESPACE_ID"] is None and proc.stderr == ""


def test_env_file_values_with_odd_characters_are_refused(
    build, python: str, tmp_path: Path
) -> None:
    env_file = tmp_path / "vcl.env"
    env_file.write_text("VCL_APP_NAMESPACE_ID=a b$(x)\nVCL_APP_NAMESPACE_SECRET=\n")
    seen = env_seen(build, python, {**TEST, "VCL_ENV_FILE": str(env_file)})
    assert seen["VCL_APP_NAMESPACE_ID"] is None and seen["VCL_APP_NAMESPACE_SECRET"] is None
