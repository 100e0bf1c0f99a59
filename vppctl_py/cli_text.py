"""Parsers for VPP 26.06 CLI texts where the binary API has no dump message.

VPP has no dump message for app namespaces, apps, app workers or sessions, so these
come from `cli_inband` text, parsed here and tested on real captures
(tests/fixtures/vpp/cli). The texts carry ANSI colour codes (`show app ns`, even via
cli_inband with `unix { nocolor }`) and NUL bytes (`show app`, `api-clients`: VPP prints
a C string's terminator): both are handled here, nowhere else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from vppctl_py.errors import CliTextError
from vppctl_py.models import AppNamespace, AppWorker, MainHeap, Session

ANSI = re.compile(r"\x1b\[[0-9;]*m")
CELL_END = "\x1b[0m"  # VPP's table formatter ends every cell with a colour reset
SESSION_DISABLED = "session layer is not enabled"
CONNECTION = (
    r"\[(?P<thread>\d+):(?P<index>\d+)\]\[(?P<transport>[^\]]+)\] (?P<local>\S+)->(?P<remote>\S+)"
)
SESSION_ROW = re.compile(CONNECTION + r"\s+(?P<state>[A-Z_-]+)\s+(?P<rx>\d+)\s+(?P<tx>\d+)\s*$")
OWNER_ROW = re.compile(CONNECTION + r"\s+(?P<app>\S+)(?:\s+(?P<wrk>\d+))?\s*$")
MQ_WORKER = re.compile(r"\[A(\d+)\]\[(\d+)\]")
HEAP_SIZE = re.compile(r"\bsize (?P<size>[0-9.]+[kmg]?)\b")
HEAP_USAGE = re.compile(
    r"total: (?P<total>\S+), used: (?P<used>\S+), free: (?P<free>\S+), "
    r"trimmable: (?P<trimmable>\S+)"
)
UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def clean(text: str) -> str:
    """Text without ANSI colour codes and NUL bytes."""
    return ANSI.sub("", text).replace("\x00", "")


def check_session_enabled(text: str) -> None:
    """Raise if VPP says its session layer is off (then no session CLI answers)."""
    if SESSION_DISABLED in text:
        raise CliTextError(text.strip())


def parse_app_namespaces(text: str) -> list[AppNamespace]:
    """`show app ns`: Index, Secret, Interface, Id, Socket (VPP's table formatter)."""
    check_session_enabled(text)
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not clean(lines[0]).startswith("Index"):
        raise CliTextError(f"not a `show app ns` table: {text[:80]!r}")
    starts = [m.start() for m in re.finditer(r"\S+", clean(lines[0]))]
    return [_namespace_row(line, starts) for line in lines[1:]]


def _namespace_row(line: str, starts: list[int]) -> AppNamespace:
    if CELL_END in line:
        cells = [cell.strip() for cell in clean_cells(line)]
    else:  # no colour codes: cut where the header's columns start
        ends = [*starts[1:], None]
        cells = [line[start:end].strip() for start, end in zip(starts, ends, strict=True)]
    if len(cells) != 5:
        raise CliTextError(f"`show app ns` row has {len(cells)} cells, want 5: {line!r}")
    index, secret, interface, ns_id, sock_name = cells
    try:
        return AppNamespace(int(index), ns_id, int(secret), interface, sock_name)
    except ValueError as e:
        raise CliTextError(f"bad `show app ns` row {line!r}: {e}") from None


def clean_cells(line: str) -> list[str]:
    """The cells of one table row, split at VPP's per-cell colour resets."""
    return [ANSI.sub("", cell).replace("\x00", "") for cell in line.split(CELL_END)[:-1]]


@dataclass(frozen=True)
class AppRow:
    """One row of `show app`."""

    index: int
    name: str
    ns_id: str


# `show app` prints an app's name in 20 columns, cut there, with the namespace right after
# it (no space when the name fills them); `show app listeners`/`client` in 25, then the
# worker's number. An app's name is compared by its first 20 characters everywhere.
APP_NAME_WIDTH = 20


def app_key(name: str) -> str:
    """What every session table can tell of an app's name: its first 20 characters."""
    return name[:APP_NAME_WIDTH]


def parse_apps(text: str) -> list[AppRow]:
    """`show app` (and `show app verbose`, identical in 26.06): Index, Name, Namespace, in
    fixed columns (a name of 20 characters or more is cut and runs into the namespace).

    The namespace id is followed by a NUL byte (VPP prints the id's terminator)."""
    check_session_enabled(text)
    lines = [clean(line) for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("Index"):
        raise CliTextError(f"not a `show app` table: {text[:80]!r}")
    name_at, ns_at = lines[0].find("Name"), lines[0].find("Namespace")
    if not 0 < name_at < ns_at:
        raise CliTextError(f"not a `show app` header: {lines[0]!r}")
    rows = []
    for line in lines[1:]:
        index, name, ns_id = (
            line[:name_at].strip(),
            line[name_at:ns_at].strip(),
            line[ns_at:].strip(),
        )
        if not index.isdigit() or not name or not ns_id or " " in ns_id:
            raise CliTextError(f"bad `show app` row: {line!r}")
        rows.append(AppRow(int(index), name, ns_id))
    return rows


@dataclass(frozen=True)
class ApiClient:
    """A row of `api-clients`: an app worker's connection to the namespace socket."""

    app_index: int
    wrk_index: int  # per app: 0..n-1
    fd: int


def parse_api_clients(text: str) -> tuple[str, list[ApiClient]]:
    """`show app ns id X api-clients`: the namespace socket and its app workers.

    The row with app index -1 is the namespace socket's own listener, not a worker.
    Not used by the client: VPP 26.06 dereferences the namespace without checking it
    exists (app_namespace_show_api in src/vnet/session/application_namespace.c), so
    asking about a namespace deleted meanwhile would crash VPP; see parse_app_workers."""
    check_session_enabled(text)
    lines = [clean(line) for line in text.splitlines() if line.strip()]
    if len(lines) < 2 or not lines[0].startswith("socket: "):
        raise CliTextError(f"not an `api-clients` listing: {text[:80]!r}")
    workers = []
    for line in lines[2:]:
        parts = line.split()
        try:
            app_index, wrk_index, fd = (int(p) for p in parts)
        except ValueError:
            raise CliTextError(f"bad `api-clients` row: {line!r}") from None
        if app_index >= 0:
            workers.append(ApiClient(app_index, wrk_index, fd))
    return lines[0].removeprefix("socket: ").strip(), workers


def parse_app_workers(text: str) -> list[AppWorker]:
    """`show app mq`: per app, `[A<app>][<worker>]` and the worker's queue stats.

    `[Ctrl<n>]` lines are VPP's own queues; `[A<app>][R<n>]` are rx queues, not workers."""
    check_session_enabled(text)
    return [AppWorker(int(m[1]), int(m[2])) for m in MQ_WORKER.finditer(clean(text))]


def parse_sessions(text: str) -> list[Session]:
    """`show session verbose`: one row per session and a `Thread N: ...` footer."""
    return [
        Session(
            thread=int(m["thread"]),
            index=int(m["index"]),
            transport=m["transport"],
            local=m["local"],
            remote=m["remote"],
            state=m["state"],
            rx_fifo=int(m["rx"]),
            tx_fifo=int(m["tx"]),
        )
        for m in _rows(text, SESSION_ROW, "show session verbose")
    ]


@dataclass(frozen=True)
class SessionOwner:
    """A row of `show app listeners` or `show app client`: connection and app name."""

    thread: int
    index: int
    app: str
    transport: str = ""
    local: str = ""
    remote: str = ""


def parse_session_owners(text: str) -> list[SessionOwner]:
    """`show app listeners` / `show app client`: Connection, App[, Wrk]."""
    return [
        SessionOwner(
            int(m["thread"]), int(m["index"]), m["app"], m["transport"], m["local"], m["remote"]
        )
        for m in _rows(text, OWNER_ROW, "show app listeners/client")
    ]


def _rows(text: str, row: re.Pattern[str], command: str) -> list[re.Match[str]]:
    """The data rows of a session table (header and `Thread N:` footers skipped)."""
    check_session_enabled(text)
    matches = []
    for line in clean(text).splitlines():
        if not line.strip() or line.startswith(("Connection", "Thread ")):
            continue
        m = row.match(line)
        if m is None:
            raise CliTextError(f"bad `{command}` row: {line!r}")
        matches.append(m)
    return matches


def attribute_sessions(
    sessions: list[Session], owners: list[SessionOwner], app_ns: dict[str, str]
) -> list[Session]:
    """Sessions with their app and namespace filled in where the CLI tells.

    Listeners and connecting sessions are named by `show app listeners`/`client`.
    VPP 26.06 prints no owner for accepted sessions: those get the app listening on
    their local endpoint (same ip:port, or the wildcard 0.0.0.0/:: on that port)."""
    by_id = {(o.thread, o.index): o.app for o in owners}
    listening = {
        s.local: by_id[(s.thread, s.index)]
        for s in sessions
        if s.state == "LISTEN" and (s.thread, s.index) in by_id
    }
    result = []
    for s in sessions:
        app = by_id.get((s.thread, s.index)) or _listener_for(s.local, listening)
        ns_id = app_ns.get(app_key(app)) if app else None
        result.append(replace(s, app=app, ns_id=ns_id))
    return result


def _listener_for(local: str, listening: dict[str, str]) -> str | None:
    port = local.rpartition(":")[2]
    for candidate in (local, f"0.0.0.0:{port}", f":::{port}"):
        if candidate in listening:
            return listening[candidate]
    return None


def parse_main_heap(text: str) -> MainHeap:
    """`show memory main-heap`.

    No capture of this command is recorded; the format is derived from
    VPP 26.06's source: show_memory_usage (src/vlib/cli.c) prints format_clib_mem_heap
    (src/vppinfra/mem_dlmalloc.c): "base 0x..., size 1g, ..., name 'main heap'", an
    optional page-stats block, then "total: 1023.99M, used: 60.36M, free: 963.63M,
    trimmable: 961.96M" (sizes with format_memory_size: lowercase k/m/g; usage with
    format_msize: two decimals and K/M/G)."""
    size = HEAP_SIZE.search(text)
    usage = HEAP_USAGE.search(text)
    if size is None or usage is None:
        raise CliTextError(f"not a `show memory main-heap` text: {text[:80]!r}")
    return MainHeap(
        size=parse_size(size["size"]),
        total=parse_size(usage["total"]),
        used=parse_size(usage["used"]),
        free=parse_size(usage["free"]),
        trimmable=parse_size(usage["trimmable"]),
    )


def parse_size(text: str) -> int:
    """Bytes from VPP's "1g", "1.50g", "963.63M", "512" (K/M/G are powers of 1024)."""
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([kKmMgG]?)", text)
    if m is None:
        raise CliTextError(f"not a VPP memory size: {text!r}")
    return round(float(m[1]) * UNITS[m[2].lower()])


# format_clib_time (src/vppinfra/time.c), `show clock verbose`: "... init %.6f" is the
# host's unix time when VPP's clock started, i.e. when this VPP process started.
_CLOCK_INIT = re.compile(r"reftime \S+ now \S+ last \S+ init (\d+(?:\.\d+)?)")


def parse_clock_init(text: str) -> float:
    """When VPP started (unix seconds), from `show clock verbose`: a restarted VPP has a
    new value even where its pid does not change (pid 1 in a container)."""
    found = _CLOCK_INIT.search(text)
    if found is None:
        raise CliTextError(f"show clock verbose: no 'init' time in {text[:200]!r}")
    return float(found.group(1))
