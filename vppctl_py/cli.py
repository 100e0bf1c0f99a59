"""vppctl-py: like vppctl, but over VPP's binary API socket (cli_inband).

Exit codes: 0 done; 1 VPP unreachable, disconnected, or its API definitions do not
match (one line on stderr); 2 bad command line; 3 VPP rejected the command (its message
is printed). Without a command: an interactive `vpp# ` prompt with line history.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from vppctl_py.client import Vpp
from vppctl_py.connection import DEFAULT_API_SOCKET, DEFAULT_TIMEOUT
from vppctl_py.errors import VppApiDefinitionsError, VppCliError, VppConnectError, VppDisconnected

EXIT_UNREACHABLE = 1
EXIT_COMMAND_FAILED = 3
PROMPT = "vpp# "
HISTORY_FILE = "~/.vppctl_py_history"  # like a shell's: survives between sessions
QUIT_WORDS = {"quit", "exit", "q"}

app = typer.Typer(
    add_completion=False,
    context_settings={"allow_interspersed_args": False, "help_option_names": ["-h", "--help"]},
)


@app.command()
def run(
    command: Annotated[
        list[str] | None, typer.Argument(help="CLI command, e.g. show version")
    ] = None,
    socket: Annotated[
        str, typer.Option("-s", "--socket", help="VPP API socket", envvar="VPP_API_SOCKET")
    ] = DEFAULT_API_SOCKET,
    api_dir: Annotated[
        Path | None,
        typer.Option(
            "--api-dir",
            help="VPP *.api.json tree to use instead of the running VPP's own "
            "definitions (default $VPP_API_DIR, else ask VPP)",
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option(help="seconds to wait for each reply")
    ] = DEFAULT_TIMEOUT,
) -> None:
    """Run one VPP CLI command over the API socket, or an interactive prompt."""
    try:
        with Vpp.connect(socket, api_dir, timeout) as vpp:
            if command:
                raise typer.Exit(run_one(vpp, " ".join(command)))
            interactive(vpp)
    except (VppConnectError, VppDisconnected, VppApiDefinitionsError) as e:
        typer.echo(f"vppctl-py: {e}", err=True)
        raise typer.Exit(EXIT_UNREACHABLE) from None


def run_one(vpp: Vpp, line: str) -> int:
    """Print VPP's answer to one command; the exit code for it."""
    try:
        sys.stdout.write(vpp.cli(line))
    except VppCliError as e:
        sys.stdout.write(e.output)
        return EXIT_COMMAND_FAILED
    return 0


def interactive(vpp: Vpp) -> None:
    """Read commands until EOF or `quit`; VppDisconnected ends the session."""
    history = _start_history()
    try:
        while True:
            try:
                line = input(PROMPT).strip()
            except EOFError:
                break
            if line in QUIT_WORDS:
                break
            if line:
                run_one(vpp, line)
                sys.stdout.flush()
    finally:
        history()


def _start_history() -> Callable[[], None]:
    try:
        import readline  # stdlib, but absent on some platforms
    except ImportError:
        return lambda: None
    path = os.path.expanduser(HISTORY_FILE)
    with contextlib.suppress(OSError):  # first run: no history yet
        readline.read_history_file(path)

    def save() -> None:
        with contextlib.suppress(OSError):  # a read-only home must not break the CLI
            readline.write_history_file(path)

    return save


def main() -> None:
    app()
