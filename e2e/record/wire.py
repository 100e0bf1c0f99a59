"""A logging proxy for VPP's binary API socket: every frame a client and VPP exchange,
byte for byte, in the order they crossed (for tests/fixtures/vpp/wire-transcript.json)."""

from __future__ import annotations

import selectors
import socket
import threading
from pathlib import Path
from typing import Any

from vppctl_py.testing.wire import HEADER, FrameBuffer


class WireRecorder:
    """Listens on `path`, relays the first client to VPP at `api_socket`, records frames."""

    def __init__(self, path: Path, api_socket: str) -> None:
        self.path = path
        self.api_socket = api_socket
        self.frames: list[tuple[str, bytes]] = []
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        self._listener.listen(1)
        self._thread = threading.Thread(target=self._relay, name="wire-recorder", daemon=True)

    def __enter__(self) -> WireRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.join(timeout=10)
        self._listener.close()

    def _relay(self) -> None:
        client, _ = self._listener.accept()
        vpp = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        vpp.connect(self.api_socket)
        peers = {client: (vpp, "client_to_vpp", FrameBuffer()),
                 vpp: (client, "vpp_to_client", FrameBuffer())}  # fmt: skip
        with selectors.DefaultSelector() as selector:
            for sock in peers:
                selector.register(sock, selectors.EVENT_READ)
            open_ends = 2
            while open_ends:
                for key, _ in selector.select(timeout=10):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    other, direction, frames = peers[sock]
                    chunk = sock.recv(1 << 20)
                    if not chunk:
                        selector.unregister(sock)
                        other.shutdown(socket.SHUT_WR)
                        open_ends -= 1
                        continue
                    for body in frames.feed(chunk):
                        # FrameBuffer drops headers; VPP's own (with its q bytes) are lost,
                        # so the header is rebuilt: q is ignored by every reader.
                        self.frames.append((direction, HEADER.pack(0, len(body), 0) + body))
                    other.sendall(chunk)
        client.close()
        vpp.close()

    def transcript(self, names: dict[int, str]) -> list[dict[str, Any]]:
        """The frames as fixture entries: direction, bytes (hex), message id and name."""
        entries = []
        for direction, frame in self.frames:
            msg_id = int.from_bytes(frame[HEADER.size : HEADER.size + 2], "big")
            name = names.get(msg_id, f"unknown-{msg_id}")
            if direction == "client_to_vpp" and msg_id == 15:
                name = "sockclnt_create"  # papi's hard-coded handshake id
            entries.append({"dir": direction, "hex": frame.hex(), "msg_id": msg_id, "msg": name})
        return entries
