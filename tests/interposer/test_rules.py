"""The dual-stack rules as real programs see them, and what a malformed rule does.

Covers: loopback (127/8, ::1, v4-mapped) always on the kernel without the test knob; DNS
port 53 on the kernel by default; VCL_KERNEL_PORTS (lists, ranges, replacing the default,
empty); VCL_KERNEL_CIDRS for IPv4, IPv6 and v4-mapped addresses; wildcard binds to VCL,
or to both stacks with VCL_KERNEL_LISTEN=both; every malformed rule disables the VCL path
with exactly one stderr line while the program keeps working on the kernel.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

PROBE = str(Path(__file__).resolve().parent / "path_probe.py")
KERNEL, VCL, BOTH = 1, 2, 3
TEST = {"VCL_DUALSTACK_TEST": "1"}


def probe(build, python: str, mode: str, targets: list[str], env: dict[str, str]) -> list[int]:
    proc = build.run([python, PROBE, mode, *targets], env)
    assert proc.returncode == 0, proc.stderr
    return list(json.loads(proc.stdout))


CASES = [
    # (env, target, path) for a UDP datagram sent to target
    ({}, "127.0.0.2:9", KERNEL),
    ({}, "127.255.0.1:9", KERNEL),
    ({}, "[::1]:9", KERNEL),
    ({}, "[::ffff:127.0.0.5]:9", KERNEL),
    ({"VCL_KERNEL_CIDRS": "10.0.0.0/8"}, "127.0.0.2:9", KERNEL),
    (TEST, "127.0.0.2:9", VCL),
    (TEST, "127.0.0.2:53", KERNEL),
    (TEST, "[::1]:53", KERNEL),
    ({**TEST, "VCL_KERNEL_PORTS": "9,1000-1010"}, "127.0.0.2:1005", KERNEL),
    ({**TEST, "VCL_KERNEL_PORTS": "9,1000-1010"}, "127.0.0.2:9", KERNEL),
    ({**TEST, "VCL_KERNEL_PORTS": "9,1000-1010"}, "127.0.0.2:53", VCL),
    ({**TEST, "VCL_KERNEL_PORTS": "9,1000-1010"}, "127.0.0.2:1011", VCL),
    ({**TEST, "VCL_KERNEL_PORTS": ""}, "127.0.0.2:53", VCL),
    ({**TEST, "VCL_KERNEL_CIDRS": "127.0.0.0/30, ::1/128"}, "127.0.0.3:9", KERNEL),
    ({**TEST, "VCL_KERNEL_CIDRS": "127.0.0.0/30, ::1/128"}, "127.0.0.4:9", VCL),
    ({**TEST, "VCL_KERNEL_CIDRS": "127.0.0.0/30, ::1/128"}, "[::1]:9", KERNEL),
    ({**TEST, "VCL_KERNEL_CIDRS": "127.0.0.0/30"}, "[::ffff:127.0.0.2]:9", KERNEL),
    ({**TEST, "VCL_KERNEL_CIDRS": "127.0.0.0/30"}, "[::ffff:127.0.0.9]:9", VCL),
    ({**TEST, "VCL_KERNEL_CIDRS": "127.0.0.9"}, "127.0.0.9:9", KERNEL),
    ({**TEST, "VCL_KERNEL_CIDRS": "127.0.0.9"}, "127.0.0.8:9", VCL),
    ({**TEST, "VCL_KERNEL_CIDRS": "0.0.0.0/0"}, "127.0.0.8:9", KERNEL),
]


@pytest.mark.parametrize(("env", "target", "path"), CASES)
def test_datagram_destination(build, python: str, env: dict[str, str], target: str, path: int):
    assert probe(build, python, "udp", [target], env) == [path]


BIND_CASES = [
    (TEST, "0.0.0.0:0", VCL),  # an ephemeral wildcard bind is deferred, then listen decides
    (TEST, "[::]:0", VCL),
    (TEST, "127.0.0.2:0", VCL),
    ({}, "0.0.0.0:0", VCL),  # a wildcard listener is not loopback: it goes to VCL
    ({**TEST, "VCL_KERNEL_PORTS": "39999"}, "0.0.0.0:39999", KERNEL),
    ({**TEST, "VCL_KERNEL_LISTEN": "both"}, "0.0.0.0:0", BOTH),
    ({"VCL_KERNEL_LISTEN": "both"}, "127.0.0.1:0", KERNEL),
]


@pytest.mark.parametrize(("env", "target", "path"), BIND_CASES)
def test_bind(build, python: str, env: dict[str, str], target: str, path: int) -> None:
    assert probe(build, python, "tcp-listen", [target], env) == [path]


MALFORMED = [
    ("VCL_KERNEL_CIDRS", "10.0.0.0/33"),
    ("VCL_KERNEL_CIDRS", "10.0.0.1/"),
    ("VCL_KERNEL_CIDRS", "not-an-ip"),
    ("VCL_KERNEL_CIDRS", "fe80::/129"),
    ("VCL_KERNEL_PORTS", "0"),
    ("VCL_KERNEL_PORTS", "70000"),
    ("VCL_KERNEL_PORTS", "http"),
    ("VCL_KERNEL_PORTS", "5-3"),
    ("VCL_KERNEL_LISTEN", "maybe"),
    pytest.param("VCL_KERNEL_CIDRS", ",".join(["10.0.0.1"] * 65), id="65-cidrs"),
    pytest.param("VCL_KERNEL_PORTS", "1," * 3000, id="6000-byte-ports"),
]


@pytest.mark.parametrize(("var", "value"), MALFORMED)
def test_malformed_rule_disables_vcl_with_one_line(build, python: str, var: str, value: str):
    proc = build.run([python, PROBE, "udp", "127.0.0.2:9", "[::1]:9"], {**TEST, var: value})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [-1, -1]  # not even tracked: plain kernel sockets
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, lines
    assert f"{var}={value[:80]}" in lines[0]
    assert "VCL path disabled, every socket stays on the kernel" in lines[0]


def test_debug_logs_every_decision(build, python: str) -> None:
    env = {**TEST, "VCL_DUALSTACK_DEBUG": "1"}
    proc = build.run([python, PROBE, "udp", "127.0.0.2:9", "127.0.0.2:53"], env)
    log = [x for x in build.decisions(proc.stderr) if " sendto " in x]
    # (the fake LDP's constructor may log a sendto of its own first)
    assert [x.split(" ", 2)[2] for x in log[-2:]] == [
        "sendto 127.0.0.2:9 -> vcl (no kernel rule)",
        "sendto 127.0.0.2:53 -> kernel (port 53 in VCL_KERNEL_PORTS)",
    ]
