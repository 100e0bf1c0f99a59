"""CLI texts of the fake VPP, byte for byte in VPP 26.06's format (checked against the
texts recorded in tests/fixtures/vpp/cli by tests/vppctl/test_fake_cli.py)."""

from __future__ import annotations

import time
from collections.abc import Callable

from vppctl_py.testing.state import Session, VppCrash, VppModel

YELLOW, RESET = "\x1b[33m", "\x1b[0m"
# The build the fixtures were recorded from (tests/fixtures/vpp/cli/1-empty/show_version*).
VERSION = "v26.06-release"
BUILD_DATE = "2026-12-02T11:55:29"
BUILD_DIRECTORY = "/root/build/vpp-src"
SESSION_DISABLED = "show app: session layer is not enabled\n"
# Texts VPP 26.06 returns with retval 0 although they are errors (captured).
FIXED_TEXTS = {
    "show app ns verbose": "unknown input [verbose]\n",
    "show session rules": "transport proto must be set\n",
    "show session rules tcp": "session rule table engine is not enabled\n",
}


def table(header: list[str], rows: list[list[str]]) -> str:
    """VPP's format_table as `show app ns` uses it: yellow header, every cell padded to
    its column and ended with a colour reset, cells joined by one space."""
    widths = [max(len(c) for c in column) for column in zip(header, *rows, strict=True)]
    lines = [" ".join(f"{YELLOW}{h.ljust(w)}{RESET}" for h, w in zip(header, widths, strict=True))]
    lines += [
        " ".join(f"{c.ljust(w)}{RESET}" for c, w in zip(r, widths, strict=True)) for r in rows
    ]
    return "\n".join(lines) + "\n"


def interface_name(model: VppModel, sw_if_index: int) -> str:
    iface = model.interfaces.get(sw_if_index)
    return iface.name if iface else f"DELETED ({sw_if_index})"


def show_app_ns(model: VppModel) -> str:
    rows = [
        [
            str(ns.index),
            str(ns.secret),
            interface_name(model, ns.sw_if_index),
            ns.ns_id,
            ns.sock_name,
        ]
        for ns in sorted(model.namespaces.values(), key=lambda n: n.index)
    ]
    return table(["Index", "Secret", "Interface", "Id", "Socket"], rows)


def show_app_ns_id(model: VppModel, ns_id: str) -> str:
    ns = model.by_id(ns_id)
    if ns is None:
        return f"ns {ns_id} not found\n"  # show_app_ns_fn, src/vnet/session/application_namespace.c
    return (
        f"Application namespace [{ns.index}]\nid:        {ns.ns_id}\nsecret:    {ns.secret}\n"
        f"Interface: {interface_name(model, ns.sw_if_index)}\nSocket:    {ns.sock_name}\n"
        f"{'Listener':<30}{'Application':<30}\n"
    )


def show_api_clients(model: VppModel, ns_id: str) -> str:
    ns = model.by_id(ns_id)
    if ns is None:
        # Not captured; from VPP 26.06's source: app_namespace_show_api() reads
        # app_ns->sock_name without checking that the namespace exists.
        raise VppCrash(f"SIGSEGV in app_namespace_show_api: no namespace {ns_id!r}")
    # VPP prints the socket name's NUL terminator.
    lines = [f"socket: {ns.sock_name}\0", f"{'app index':>12}{'wrk index':>12}{'fd':>5}"]
    lines.append(f"{-1:>12}{-1:>12}{ns.fd:>5}")
    for app in sorted(model.apps.values(), key=lambda a: a.index):
        if app.ns_id == ns_id:
            lines += [f"{app.index:>12}{n:>12}{w.fd:>5}" for n, w in enumerate(app.workers)]
    return "\n".join(lines) + "\n"


def show_app(model: VppModel) -> str:
    lines = [f"{'Index':<10}{'Name':<20}{'Namespace':<40}"]
    lines += [
        # VPP's %-20v cuts a longer name, and the namespace follows with no space
        f"{app.index:<10}{app.name[:20]:<20}{app.ns_id + chr(0):<40}"
        for app in sorted(model.apps.values(), key=lambda a: a.index)
    ]
    return "\n".join(lines) + "\n"


def show_app_mq(model: VppModel) -> str:
    """Message queues: VPP's own ([Ctrl0], app 0), then one line per app listing every
    worker as [A<app>][<global worker index>] with its queue (left empty here)."""
    lines = ["[Ctrl0] [Q:0/2048] [R0:0/2048] [R1:0/1024]", "[A0][0] [Q:0/128] [R0:0/128] [R1:0/16]"]
    for app in sorted(model.apps.values(), key=lambda a: a.index):
        queues = " [Q:0/2048] [R0:0/2048] [R1:0/128]"
        lines.append("".join(f"[A{app.index}][{w.index}]{queues}" for w in app.workers))
    return "\n".join(lines) + "\n"


def connection(s: Session) -> str:
    return f"[0:{s.index}][{s.transport}] {s.local}->{s.remote}"


def show_session_verbose(model: VppModel) -> str:
    sessions = sorted(model.sessions.values(), key=lambda s: s.index)
    if not sessions:
        return "Thread 0: no sessions\n"
    lines = [f"{'Connection':<60}{'State':<15}{'Rx-f':<10}{'Tx-f':<10}"]
    lines += [f"{connection(s):<60}{s.state:<15}{0:<10}{0:<10}" for s in sessions]
    lines.append(f"Thread 0: active sessions {len(sessions)}")
    return "\n".join(lines) + "\n"


def show_app_listeners(model: VppModel) -> str:
    lines = [f"{'Connection':<60}{'App':<25}{'Wrk':<10}"]
    for s in sorted(model.sessions.values(), key=lambda s: s.index):
        if s.kind == "listener":
            name = model.apps[s.app_index].name
            lines.append(f"{connection(s):<60}{name[:25]:<25}{s.wrk_index:<10}")
    return "\n".join(lines) + "\n"


def show_app_client(model: VppModel) -> str:
    lines = [f"{'Connection':<60}{'App':<20}"]
    # app_worker_format_connects (src/vnet/session/application_worker.c): per app, per
    # worker, that worker's connects.
    for s in sorted(model.sessions.values(), key=lambda s: (s.app_index, s.wrk_index, s.index)):
        if s.kind == "connected":
            lines.append(f"{connection(s):<60}{model.apps[s.app_index].name[:20]:<20}")
    return "\n".join(lines) + "\n"


def memory_size(size: int) -> str:
    """format_memory_size (src/vppinfra/std-formats.c): "1g", "1.50g", "512k"."""
    log2 = size.bit_length() - 1 if size > 0 else 0
    shift = 0 if log2 < 10 else 10 if log2 < 20 else 20 if log2 < 30 else 30
    unit = " kmg"[shift // 10].strip()
    if size & ((1 << shift) - 1):
        return f"{size / (1 << shift):.2f}{unit}"
    return f"{size >> shift}{unit}"


def msize(size: int) -> str:
    """format_msize (src/vppinfra/mem_dlmalloc.c): "963.63M", "12.00K", "512"."""
    for shift, unit in ((30, "G"), (20, "M"), (10, "K")):
        if size >= 1 << shift:
            return f"{size / (1 << shift):.2f}{unit}"
    return str(size)


def show_memory_main_heap(model: VppModel) -> str:
    """show_memory_usage (src/vlib/cli.c) with format_clib_mem_heap; no capture exists,
    this follows VPP 26.06's source (4K pages, all populated pages counted as used)."""
    size, used = model.heap.size, model.heap_used
    pages, populated = size >> 12, (used + 4095) >> 12
    free = size - used
    return (
        f"  base 0x7f1c40000000, size {memory_size(size)}, locked, unmap-on-destroy, "
        "name 'main heap'\n"
        f"    page stats: page-size 4K, total {pages}, populated {populated}, "
        f"not-populated {pages - populated}\n"
        f"      numa 0: {populated} pages, {memory_size(populated << 12)} bytes\n"
        f"    total: {msize(size)}, used: {msize(used)}, free: {msize(free)}, "
        f"trimmable: {msize(free)}\n"
    )


def show_version(verbose: bool, pid: int) -> str:
    if not verbose:
        return f"vpp {VERSION} built by root on vm at {BUILD_DATE}\n"
    fields = [
        ("Version:", VERSION),
        ("Compiled by:", "root"),
        ("Compile host:", "vm"),
        ("Compile date:", BUILD_DATE),
        ("Compile location:", BUILD_DIRECTORY),
        ("Compiler:", "Clang/LLVM 16.0.6 (15~deb12u1)"),
        ("Current PID:", str(pid)),
    ]
    return "".join(f"{k:<26}{v}\n" for k, v in fields)


def show_clock_verbose(model: VppModel) -> str:
    """format_clib_time(verbose) and the thread lines (src/vlib/threads.c, VPP 26.06) for a
    VPP started at model.started_at, one thread; timebase date as VPP prints it."""
    now = time.time()
    up = now - model.started_at
    clock = (
        f"Time now {up:.6f}\n"
        f"          cpu time {up:.6f} now 0 last 0 since start 0 \n"
        f"          reftime {up:.6f} now {now:.6f} last {now:.6f} init {model.started_at:.6f}\n"
        f"          error 0.000000, clocks/sec 2000000000.000000"
    )
    date = time.strftime("%a, %d %b %Y %H:%M:%S", time.gmtime(now))
    return (
        f"{clock}, {date} GMT\nTime last barrier release 0.000000000\n0: {clock}\n"
        "Thread 0 offset 0.000000000 error 0.000000000\n"
    )


def run_cli(model: VppModel, cmd: str, pid: int) -> tuple[int, str]:
    """(retval, text) of one cli_inband command."""
    words = cmd.split()
    line = " ".join(words)
    if line in FIXED_TEXTS:
        return 0, FIXED_TEXTS[line]
    if line in ("show version", "show version verbose"):
        return 0, show_version(line.endswith("verbose"), pid)
    if line == "show memory main-heap":
        return 0, show_memory_main_heap(model)
    if line == "show clock verbose":
        return 0, show_clock_verbose(model)
    session_cmd = _session_command(model, words)
    if session_cmd is not None:
        return 0, session_cmd() if model.session_enabled else SESSION_DISABLED
    if len(words) > 1 and words[0] == "show":
        return -1, f"show: unknown input `{' '.join(words[1:])}'\n"
    return -1, f"unknown input `{line}'\n"


def _session_command(model: VppModel, words: list[str]) -> Callable[[], str] | None:
    simple: dict[tuple[str, ...], Callable[[], str]] = {
        ("show", "app", "ns"): lambda: show_app_ns(model),
        ("show", "app"): lambda: show_app(model),
        ("show", "app", "verbose"): lambda: show_app(model),
        ("show", "app", "listeners"): lambda: show_app_listeners(model),
        ("show", "app", "client"): lambda: show_app_client(model),
        ("show", "app", "mq"): lambda: show_app_mq(model),
        ("show", "session", "verbose"): lambda: show_session_verbose(model),
    }
    if tuple(words) in simple:
        return simple[tuple(words)]
    if words[:4] == ["show", "app", "ns", "id"] and len(words) in (5, 6):
        if len(words) == 5:
            return lambda: show_app_ns_id(model, words[4])
        if words[5] == "api-clients":
            return lambda: show_api_clients(model, words[4])
    return None
