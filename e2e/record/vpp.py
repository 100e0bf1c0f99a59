"""Record the VPP fixtures the tests use, from a real, freshly started VPP.

    python3 -m e2e.record.vpp --api-socket /run/vpp/api.sock --out tests/fixtures/vpp \\
        --crc-table vppctl_py/api_crcs.json --vpp-prefix /opt/vpp

What it writes (tests/fixtures/vpp/README.md says what each file is for):
- api-definitions.json: VPP's get_api_json answer, kept to the modules vppctl_py and the
  test double use; message-table.json: the handshake's message table;
- wire-transcript.json: one papi session through a logging proxy;
- cli/<state>/<command>.txt: `cli_inband` texts, byte-exact, in the states 1-empty,
  2-two-namespaces, api-cases, 3-vcl-apps (real VCL apps attached: an LDP Python server
  and client with multi-thread-workers, vcl_test_server), 4-apps-exited, hazard; and
  cli/index.json (state, command, file, retval, VPP version);
- with --crc-table: that VPP release's CRCs of every message vppctl_py uses.

Needs: VPP with the session layer enabled and the socket app API (`session { enable
use-app-socket-api }`), runtime dir /run/vpp, and its VCL libraries and vcl_test_server
under --vpp-prefix. It creates loop0 (10.99.0.1/24) if missing. It ends by leaving a
half-made namespace in VPP (the hazard it records): restart VPP afterwards.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from e2e.record import vpp_defs
from e2e.record.wire import WireRecorder
from vppctl_py.testing.wire import write_api_dir

SOCKETS = "/run/vpp/app_ns_sockets"
LOOP_ADDRESS = "10.99.0.1"
NO_INDEX = 0xFFFFFFFF
EMPTY_STATE_COMMANDS = (
    "show version", "show version verbose", "show app", "show app verbose", "show app mq",
    "show app ns", "show app ns verbose", "show session verbose", "show session rules",
    "show session rules tcp", "show clock verbose",
)  # fmt: skip
APP_STATE_COMMANDS = (
    "show app", "show app verbose", "show app mq", "show app ns",
    "show app ns id tenant-a api-clients", "show app ns id tenant-b api-clients",
    "show session verbose", "show app listeners", "show app client",
)  # fmt: skip

# An LDP program of ours: threads that each listen on (or connect to) one port and hold
# the connection, so VPP shows one app worker per thread with multi-thread-workers. The
# threads never end: VCL drops a thread's worker, sessions and all, when it exits.
PY_APP = """
import socket, sys, threading
role, address, ports = sys.argv[1], sys.argv[2], [int(p) for p in sys.argv[3:]]
held, ready = [], threading.Barrier(len(ports) + 1)
def serve(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(8); held.append(s); ready.wait()
    held.append(s.accept()[0]); threading.Event().wait()
def call(port):
    c = socket.create_connection((address, port)); held.append(c); ready.wait()
    threading.Event().wait()
threads = [threading.Thread(target=serve if role == "server" else call, args=(p,)) for p in ports]
for t in threads: t.start()
ready.wait(); print("ready", flush=True); threading.Event().wait()
"""


@dataclass
class Recording:
    papi: Any
    out: Path
    version: str
    index: list[dict[str, Any]] = field(default_factory=list)

    def cli(self, cmd: str) -> tuple[int, str]:
        reply = self.papi.api.cli_inband(cmd=cmd)
        return int(reply.retval), str(reply.reply)

    def capture(self, state: str, cmd: str, name: str | None = None) -> str:
        retval, text = self.cli(cmd)
        file = f"cli/{state}/{name or cmd.replace(' ', '_')}.txt"
        (self.out / file).parent.mkdir(parents=True, exist_ok=True)
        (self.out / file).write_text(text)
        self.index.append({"state": state, "cmd": cmd, "file": file, "retval": retval,
                           "bytes": len(text.encode()), "vpp": self.version})  # fmt: skip
        return text

    def namespace(self, ns_id: str, secret: int, sock_name: str, *, sw_if_index: int) -> int:
        reply = self.papi.api.app_namespace_add_del_v4(
            is_add=True, namespace_id=ns_id, secret=secret, sw_if_index=sw_if_index,
            ip4_fib_id=0, ip6_fib_id=0, sock_name=sock_name,
        )  # fmt: skip
        return int(reply.retval)

    def delete(self, ns_id: str) -> int:
        reply = self.papi.api.app_namespace_add_del_v4(
            is_add=False, namespace_id=ns_id, sock_name=""
        )
        return int(reply.retval)


def bootstrap_client(api_socket: str, name: str) -> Any:
    from vpp_papi import VPPApiClient

    papi = VPPApiClient(bootstrapapi=True, use_socket=True, server_address=api_socket,
                        read_timeout=10, async_thread=False)  # fmt: skip
    papi.connect(name)
    return papi


def release_name(version: str) -> str:
    """ "26.06-release" or "v26.06-rc1~3" -> "26.06"."""
    return version.removeprefix("v").split("-")[0].split("~")[0]


def record_definitions(api_socket: str, out: Path, crc_table: Path | None) -> dict[int, str]:
    """api-definitions.json, message-table.json and the CRC entry; returns id -> name."""
    papi = bootstrap_client(api_socket, "vcl-record-defs")
    try:
        version = str(papi.api.show_version().version)
        docs = json.loads(papi.api.get_api_json().json)
        table = list(papi.transport.message_table.items())  # wire order
    finally:
        papi.disconnect()
    (out / "api-definitions.json").write_text(vpp_defs.dumps_definitions(vpp_defs.trimmed(docs)))
    (out / "message-table.json").write_text(json.dumps([[i, k] for k, i in table], indent=1))
    if crc_table is not None:
        doc = json.loads(crc_table.read_text()) if crc_table.exists() else {"releases": {}}
        keys = [key for key, _ in table]
        doc["releases"][release_name(version)] = vpp_defs.crc_entry(docs, keys, version)
        crc_table.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return {i: k.rpartition("_")[0] for k, i in table}


def record_wire(api_socket: str, out: Path, names: dict[int, str]) -> None:
    """One papi session (definitions from files, as with --api-dir) through the proxy."""
    from vpp_papi import VPPApiClient

    with tempfile.TemporaryDirectory(prefix="vcl-wire-") as tmp:
        served = json.loads((out / "api-definitions.json").read_text())
        api_dir = write_api_dir(served, Path(tmp) / "api")
        with WireRecorder(Path(tmp) / "proxy.sock", api_socket) as proxy:
            papi = VPPApiClient(apidir=str(api_dir), use_socket=True, async_thread=False,
                                server_address=str(proxy.path), read_timeout=10)  # fmt: skip
            papi.connect("vcl-record-wire")
            papi.api.show_version()
            papi.api.cli_inband(cmd="show app")
            for is_add in (True, False):
                papi.api.app_namespace_add_del_v4(
                    is_add=is_add, namespace_id="wire-ns", secret=4242, sw_if_index=NO_INDEX,
                    ip4_fib_id=0, ip6_fib_id=0, sock_name=f"{SOCKETS}/wire-ns",
                )  # fmt: skip
            papi.disconnect()
    (out / "wire-transcript.json").write_text(json.dumps(proxy.transcript(names), indent=1))


def loop0(rec: Recording) -> int:
    """loop0's sw_if_index, creating it with 10.99.0.1/24 when VPP has none."""
    for d in rec.papi.api.sw_interface_dump(sw_if_index=NO_INDEX):
        if d.interface_name == "loop0":
            return int(d.sw_if_index)
    rec.cli("create loopback interface")
    rec.cli(f"set interface ip address loop0 {LOOP_ADDRESS}/24")
    rec.cli("set interface state loop0 up")
    return loop0(rec)


def vcl_conf(path: Path, socket: str, *, workers: bool) -> Path:
    lines = ["rx-fifo-size 65536", "tx-fifo-size 65536", "app-scope-local", "app-scope-global",
             f"app-socket-api {socket}", "use-mq-eventfd"]  # fmt: skip
    if workers:
        lines.append("multi-thread-workers")
    path.write_text("vcl {\n" + "".join(f"  {line}\n" for line in lines) + "}\n")
    return path


def first_line(proc: subprocess.Popen[str], *, timeout: float) -> str:
    """The program's first line of output, or "" if it says nothing in time."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline() if ready else ""


@contextlib.contextmanager
def vcl_apps(prefix: Path, work: Path) -> Iterator[list[subprocess.Popen[str]]]:
    """tenant-a: an LDP Python server (5001, 5002) and its client, 3 workers each;
    tenant-b: vcl_test_server with 2 workers on 5201 (and 5202). Killed on exit."""
    found = sorted(prefix.glob("lib*/**/libvcl_ldpreload.so"))
    if not found:
        raise RuntimeError(f"no libvcl_ldpreload.so under {prefix}/lib*")
    lib = found[0].parent
    conf_a = vcl_conf(work / "vcl-a.conf", f"{SOCKETS}/tenant-a", workers=True)
    conf_b = vcl_conf(work / "vcl-b.conf", "abstract:vpp-ns-tenant-b", workers=False)
    ldp = {"LD_PRELOAD": str(lib / "libvcl_ldpreload.so"), "LD_LIBRARY_PATH": str(lib),
           "VCL_CONFIG": str(conf_a), "LDP_SID_BIT": "20"}  # fmt: skip
    procs: list[subprocess.Popen[str]] = []
    try:
        for role in ("server", "client"):
            procs.append(subprocess.Popen(
                [sys.executable, "-c", PY_APP, role, LOOP_ADDRESS, "5001", "5002"],
                stdout=subprocess.PIPE,
                text=True, env={**os.environ, **ldp},
            ))  # fmt: skip
            line = first_line(procs[-1], timeout=30)
            if line.strip() != "ready":
                raise RuntimeError(f"the LDP {role} did not start (said {line!r})")
        server = prefix / "bin" / "vcl_test_server"
        procs.append(subprocess.Popen(
            [str(server), "-w", "2", "5201"], stdout=subprocess.DEVNULL, text=True,
            env={**os.environ, "LD_LIBRARY_PATH": str(lib), "VCL_CONFIG": str(conf_b)},
        ))  # fmt: skip
        time.sleep(2)
        yield procs
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGKILL)
            proc.wait()


def record_states(rec: Recording, prefix: Path) -> None:
    ns_rows = rec.cli("show app ns")[1]
    if ns_rows.count("\n") > 2 or "apps" in rec.cli("show app")[1].lower():
        raise RuntimeError("VPP is not fresh (namespaces or apps exist): restart it first")
    for cmd in EMPTY_STATE_COMMANDS:
        rec.capture("1-empty", cmd)
    loop = loop0(rec)
    assert rec.namespace("tenant-a", 1111, f"{SOCKETS}/tenant-a", sw_if_index=loop) == 0
    assert rec.namespace("tenant-b", 2222, "abstract:vpp-ns-tenant-b", sw_if_index=NO_INDEX) == 0
    for cmd in ("show app ns", "show app ns id tenant-a", "show app"):
        rec.capture("2-two-namespaces", cmd)
    # Adding an existing id updates its secret (the socket stays); a default socket name.
    assert rec.namespace("tenant-a", 9999, f"{SOCKETS}/ignored", sw_if_index=loop) == 0
    rec.capture("api-cases", "show app ns", "show_app_ns_after_duplicate_add")
    assert rec.namespace("tenant-a", 1111, f"{SOCKETS}/tenant-a", sw_if_index=loop) == 0
    assert rec.namespace("x" * 63, 63, "", sw_if_index=NO_INDEX) == 0
    rec.capture("api-cases", "show app ns", "show_app_ns_with_default_sockname_and_long_id")
    assert rec.delete("x" * 63) == 0
    with tempfile.TemporaryDirectory(prefix="vcl-apps-") as tmp, vcl_apps(prefix, Path(tmp)):
        for cmd in APP_STATE_COMMANDS:
            rec.capture("3-vcl-apps", cmd)
    time.sleep(1)  # VPP notices the apps' sockets closing
    assert rec.delete("tenant-b") == 0
    for cmd in ("show app", "show app ns", "show app ns id tenant-a api-clients",
                "show session verbose"):  # fmt: skip
        rec.capture("4-apps-exited", cmd)
    assert rec.delete("tenant-a") == 0
    # The hazard: a socket in a missing directory (add -1, half-made, delete survives),
    # then a name that is no path at all (add -1, half-made; deleting it would crash VPP).
    rec.namespace("half-dir", 0, "/run/vpp/no-such-dir/x.sock", sw_if_index=0)
    rec.capture("hazard", "show app ns", "show_app_ns_after_missing_dir_add")
    rec.delete("half-dir")
    rec.capture("hazard", "show app ns", "show_app_ns_after_missing_dir_del")
    rec.namespace("half-bad", 0, "@bad", sw_if_index=0)
    rec.capture("hazard", "show app ns", "show_app_ns_after_bad_add")


def main(
    api_socket: Annotated[str, typer.Option(help="VPP's binary API socket")] = "/run/vpp/api.sock",
    out: Annotated[Path, typer.Option(help="fixture folder")] = Path("tests/fixtures/vpp"),
    crc_table: Annotated[
        Path | None, typer.Option(help="add this release's CRCs to vppctl_py/api_crcs.json")
    ] = None,
    vpp_prefix: Annotated[
        Path, typer.Option(help="VPP install prefix: lib*/libvcl_ldpreload.so, bin/vcl_test_server")
    ] = Path("/usr"),
) -> None:
    """Record tests/fixtures/vpp from a freshly started VPP (see the module docstring)."""
    out.mkdir(parents=True, exist_ok=True)
    # A fresh recording: nothing of an older one may linger (README.md is prose, kept).
    shutil.rmtree(out / "cli", ignore_errors=True)
    for old in out.glob("*.json"):
        old.unlink()
    names = record_definitions(api_socket, out, crc_table)
    record_wire(api_socket, out, names)
    papi = bootstrap_client(api_socket, "vcl-record")
    try:
        rec = Recording(papi, out, str(papi.api.show_version().version))
        record_states(rec, vpp_prefix)
        when = datetime.date.today().isoformat()
        (out / "cli" / "index.json").write_text(json.dumps(rec.index, indent=1) + "\n")
        (out / "recorded.json").write_text(json.dumps({
            "vpp": rec.version, "recorded": when, "by": "python3 -m e2e.record.vpp",
            "files": sorted(str(p.relative_to(out)) for p in out.rglob("*")
                            if p.is_file() and p.name != "README.md"),
        }, indent=1) + "\n")  # fmt: skip
    finally:
        papi.disconnect()
    typer.echo(
        f"recorded {out} from VPP {rec.version}; VPP keeps a half-made namespace: restart it"
    )


if __name__ == "__main__":
    typer.run(main)
