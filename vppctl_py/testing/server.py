"""FakeVpp: a VPP stand-in on a Unix socket that the real vpp-papi client connects to."""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import os
import selectors
import shutil
import socket
import tempfile
import threading
from pathlib import Path
from types import TracebackType

from vppctl_py.testing import handlers
from vppctl_py.testing.state import App, HeapModel, Interface, Session, VppCrash, VppModel
from vppctl_py.testing.wire import SOCKCLNT_CREATE_ID, Codec, FrameBuffer, api_json_from_dir

FIRST_CLIENT_INDEX = 0x80000001  # VPP's first socket client registration (captured)
FIRST_PID = 30997


def served_definitions(definitions: Path | None, api_dir: Path | None) -> str:
    """The get_api_json text the fake speaks: a recorded one, or built from an API tree."""
    if api_dir is not None:
        return api_json_from_dir(api_dir)
    path = definitions or os.environ.get("VPP_FAKE_DEFINITIONS")
    if not path:
        raise ValueError(
            "FakeVpp needs VPP API definitions: pass definitions= (a recorded get_api_json "
            "text, e.g. tests/fixtures/vpp/api-definitions.json), set VPP_FAKE_DEFINITIONS, "
            "or pass api_dir="
        )
    return _read(str(path))


@functools.cache
def _read(path: str) -> str:
    # Read once per process: every test starts a fake, the definitions never change.
    return Path(path).read_text()


class FakeVpp:
    """A fake VPP 26.06 serving the binary API on `api_socket` from a background thread.

    Start it as a context manager (or start()/stop()); connect with `Vpp.connect(
    fake.api_socket)`. Drive what apps do with attach_app()/detach_app()/add_session(),
    set up interfaces with add_interface(), simulate a restart with restart(). When the
    real VPP would crash (deleting a half-made namespace, heap exhausted) the fake drops
    every connection and stops listening: `crashed` says why; restart() revives it.
    """

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        definitions: Path | None = None,
        api_dir: Path | None = None,
        message_table: list[tuple[int, str]] | None = None,
        heap: HeapModel | None = None,
        fs_root: Path | None = None,
        container_pid: int | None = None,
    ) -> None:
        """workdir holds api.sock and app_ns_sockets/ (a temp dir when None).
        definitions: a recorded get_api_json text (default $VPP_FAKE_DEFINITIONS); or
        api_dir, an installed *.api.json tree; the fake speaks and serves those. fs_root,
        when set, is where absolute sock_names are really created (so captured requests
        naming /run/vpp/... can be replayed); VPP's socket dir then reads /run/vpp/....
        container_pid: VPP runs in a pid namespace (a pod): its pid is this number and
        stays the same across restarts, as pid 1 does in a container."""
        self._own_dir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="fakevpp-")) if workdir is None else workdir
        self.api_socket = str(self.workdir / "api.sock")
        self.codec = Codec.load(served_definitions(definitions, api_dir), message_table)
        self.heap = heap or HeapModel()
        self.fs_root = fs_root
        self.container_pid = container_pid
        self.pid = FIRST_PID if container_pid is None else container_pid
        self.crashed: str | None = None
        self.unhandled: list[str] = []  # requests the fake does not implement
        self.frozen = False  # True: requests are read but never answered (a hung VPP)
        self._lock = threading.RLock()
        self._clients: dict[socket.socket, FrameBuffer] = {}
        self._next_client = FIRST_CLIENT_INDEX
        self._listener: socket.socket | None = None
        self._selector: selectors.DefaultSelector | None = None
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self.model = self._new_model()

    # --- lifecycle -------------------------------------------------------------------

    def _new_model(self) -> VppModel:
        if self.fs_root is None:
            socket_dir = str(self.workdir / "app_ns_sockets")
            Path(socket_dir).mkdir(parents=True, exist_ok=True)
        else:
            socket_dir = "/run/vpp/app_ns_sockets"
            (self.fs_root / socket_dir.lstrip("/")).mkdir(parents=True, exist_ok=True)
        return VppModel(socket_dir, self.heap, fs_root=self.fs_root)

    def start(self) -> FakeVpp:
        with self._lock:
            self._listen()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._serve, name="FakeVpp", daemon=True)
        self._thread.start()
        return self

    def _listen(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.api_socket)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.api_socket)
        listener.listen(16)
        listener.setblocking(False)
        self._listener = listener
        self._poke()

    def stop(self) -> None:
        """Stop serving, close everything and remove the temp dir if we made it."""
        with self._lock:
            self._drop_all()
            self.model.close_sockets()
            thread, self._thread = self._thread, None
        self._poke(b"q")
        if thread is not None:
            thread.join()
        self._wake_r.close()
        self._wake_w.close()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> FakeVpp:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def restart(self) -> None:
        """VPP restarts: connections drop, all state is gone, a new pid answers."""
        with self._lock:
            self._drop_all()
            self.model.close_sockets()
            self.model = self._new_model()
            if self.container_pid is None:
                self.pid += 1
            self.crashed = None
            self.frozen = False
            self._listen()

    def freeze(self) -> None:
        """Stop answering (connections stay open), like a VPP stuck in a long operation."""
        with self._lock:
            self.frozen = True

    def crash(self, reason: str) -> None:
        """Die like VPP: every connection drops; the socket file stays but refuses."""
        with self._lock:
            self.crashed = reason
            self._drop_all()

    def _drop_all(self) -> None:
        for conn in list(self._clients):
            self._close_client(conn)
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _poke(self, byte: bytes = b"w") -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(byte)

    # --- the server loop -------------------------------------------------------------

    def _serve(self) -> None:
        selector = self._selector
        assert selector is not None
        registered: socket.socket | None = None
        while True:
            with self._lock:
                if registered is not self._listener:
                    if registered is not None:
                        with contextlib.suppress(KeyError, ValueError):
                            selector.unregister(registered)
                    if self._listener is not None:
                        selector.register(self._listener, selectors.EVENT_READ)
                    registered = self._listener
            for key, _ in selector.select():
                sock = key.fileobj
                if sock is self._wake_r:
                    if b"q" in self._wake_r.recv(64):
                        selector.close()
                        return
                elif sock is self._listener:
                    self._accept(selector)
                else:
                    assert isinstance(sock, socket.socket)
                    self._receive(sock)

    def _accept(self, selector: selectors.BaseSelector) -> None:
        with self._lock:
            if self._listener is None:
                return
            try:
                conn, _ = self._listener.accept()
            except BlockingIOError:
                return
            conn.setblocking(True)
            self._clients[conn] = FrameBuffer()
            selector.register(conn, selectors.EVENT_READ)

    def _receive(self, conn: socket.socket) -> None:
        try:
            chunk = conn.recv(65536)
        except OSError:
            chunk = b""
        with self._lock:
            if conn not in self._clients:
                return
            if not chunk:
                self._close_client(conn)
                return
            for body in self._clients[conn].feed(chunk):
                try:
                    self._handle(conn, body)
                except VppCrash as e:
                    self.crashed = str(e)
                    self._drop_all()
                    return

    def _close_client(self, conn: socket.socket) -> None:
        self._clients.pop(conn, None)
        if self._selector is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(conn)
        conn.close()

    def _handle(self, conn: socket.socket, body: bytes) -> None:
        name, msg = self.codec.decode(body)
        if name is None:
            self.unhandled.append(f"message id {msg}")
            return
        if self.frozen:
            return
        if msg._0 == SOCKCLNT_CREATE_ID:
            index, self._next_client = self._next_client, self._next_client + 1
            conn.sendall(self.codec.handshake_reply(msg.context, index))
            return
        handler = handlers.HANDLERS.get(name)
        if handler is None:
            self.unhandled.append(name)
            return
        ctx = handlers.Context(
            self.model, self.pid, getattr(msg, "client_index", 0), self.codec.api_json
        )
        for reply, fields in handler(ctx, msg):
            conn.sendall(self.codec.encode(reply, fields))

    # --- what the test drives --------------------------------------------------------

    def add_interface(
        self,
        name: str,
        addresses: list[str] | tuple[str, ...] = (),
        *,
        vrf: int = 0,
        up: bool = True,
    ) -> int:
        """A new interface (e.g. "loop0", ["10.99.0.1/24"]); returns its sw_if_index.
        Its VRF becomes a known FIB table."""
        with self._lock:
            model = self.model
            index = max(model.interfaces) + 1
            parsed = [ipaddress.ip_interface(a) for a in addresses]
            model.interfaces[index] = Interface(index, name, vrf, parsed, up, up)
            model.fibs.add(vrf)
            return index

    def set_addresses(self, sw_if_index: int, addresses: list[str]) -> None:
        with self._lock:
            iface = self.model.interfaces[sw_if_index]
            iface.addresses = [ipaddress.ip_interface(a) for a in addresses]

    def add_fib(self, table_id: int) -> None:
        """Create an IPv4/IPv6 FIB table id (namespaces may bind to it)."""
        with self._lock:
            self.model.fibs.add(table_id)

    def attach_app(self, ns_id: str, name: str, *, workers: int = 1, eventfd: bool = True) -> int:
        """An app attaches through the namespace's socket with `workers` app workers
        (VCL registers one per thread with multi-thread-workers); returns the app index.
        eventfd is kept on the app; VPP 26.06's captured CLI texts do not show it."""
        with self._lock:
            return self.model.attach(ns_id, name, workers, eventfd).index

    def detach_app(self, app_index: int) -> None:
        """The app exits (its sessions go with it)."""
        with self._lock:
            self.model.detach(app_index)

    def add_session(
        self,
        app_index: int,
        local: str,
        remote: str = "0.0.0.0:0",
        *,
        kind: str = "listener",
        state: str | None = None,
        transport: str = "T",
        wrk_index: int = 0,
    ) -> int:
        """A session of an app: kind "listener" (LISTEN), "connected" or "accepted"
        (ESTABLISHED); returns the session index."""
        with self._lock:
            model = self.model
            if app_index not in model.apps:
                raise KeyError(f"no app {app_index}")
            index, model.next_session = model.next_session, model.next_session + 1
            state = state or ("LISTEN" if kind == "listener" else "ESTABLISHED")
            model.sessions[index] = Session(
                index, app_index, wrk_index, kind, transport, local, remote, state
            )
            return index

    def apps(self) -> list[App]:
        with self._lock:
            return list(self.model.apps.values())

    def namespace_ids(self) -> list[str]:
        with self._lock:
            return [ns.ns_id for ns in self.model.namespaces.values()]

    @property
    def heap_used(self) -> int:
        with self._lock:
            return self.model.heap_used

    @property
    def client_count(self) -> int:
        with self._lock:
            return len(self._clients)
