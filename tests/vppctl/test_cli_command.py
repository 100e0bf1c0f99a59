"""vppctl-py: one command passed through cli_inband, VPP's error text and exit code 3,
exit code 1 with one line when VPP is unreachable (in-process and as a real process),
and the interactive prompt reading commands until quit/EOF."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vppctl_py.cli import app
from vppctl_py.testing import FakeVpp

REPO = Path(__file__).resolve().parents[2]


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_show_version(fake: FakeVpp, vpp_fixtures: Path) -> None:
    code, out, _ = run("-s", fake.api_socket, "show", "version")
    assert code == 0
    assert out == (vpp_fixtures / "cli/1-empty/show_version.txt").read_text()


def test_show_app_ns_passes_colour_codes_through(fake: FakeVpp) -> None:
    code, out, _ = run("-s", fake.api_socket, "show", "app", "ns")
    assert code == 0
    assert out.startswith("\x1b[33mIndex")


def test_unknown_command_prints_vpp_text_and_exits_3(fake: FakeVpp) -> None:
    code, out, _ = run("-s", fake.api_socket, "show", "no-such-thing")
    assert (code, out) == (3, "show: unknown input `no-such-thing'\n")


@pytest.mark.parametrize("reason", ["missing", "refused"])
def test_unreachable_exits_1_with_one_line(fake: FakeVpp, tmp_path: Path, reason: str) -> None:
    sock = str(tmp_path / "none.sock")
    if reason == "refused":
        fake.crash("test")
        sock = fake.api_socket
    code, out, err = run("-s", sock, "show", "version")
    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert err.startswith(f"vppctl-py: cannot connect to VPP at {sock}")


def test_unreachable_as_a_process(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from vppctl_py.cli import main; main()",
            "-s",
            str(tmp_path / "x"),
            "show",
            "version",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"vppctl-py: cannot connect to VPP at {tmp_path / 'x'}: no such socket (is VPP running?)"
    ]


def test_interactive_prompt(fake: FakeVpp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # history file goes here
    code, out, _ = run("-s", fake.api_socket, stdin="show version\n\nshow nope\nquit\nshow app\n")
    assert code == 0
    assert "vpp v26.06-release" in out
    assert "show: unknown input `nope'" in out
    assert "Index     Name" not in out  # nothing after quit


def test_interactive_ends_at_eof(
    fake: FakeVpp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    code, out, _ = run("-s", fake.api_socket, stdin="show app\n")
    assert code == 0
    assert "Index     Name" in out


def test_vpp_dying_mid_session_exits_1(
    fake: FakeVpp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    prompts: list[str] = []

    def typed(prompt: str) -> str:
        prompts.append(prompt)
        if len(prompts) == 2:
            fake.restart()  # VPP restarts between two commands
        return "show version"

    monkeypatch.setattr("builtins.input", typed)
    code, out, err = run("-s", fake.api_socket)
    assert code == 1
    assert out.count("vpp v26.06") == 1
    assert err.startswith("vppctl-py: connection to VPP at") and "broke" in err
