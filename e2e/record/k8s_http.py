"""The recorder's two ends of HTTP (e2e.record.k8s): the HTTPS webhook the apiserver
calls, which keeps every AdmissionReview body, and a watch body read byte for byte."""

from __future__ import annotations

import base64
import copy
import json
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonpatch

from injector.webhook import certs

MUTATED = "vcl-record/mutated"  # what the recorder's webhook adds, to see mutation applied
WAIT = 60.0  # seconds any one thing may take (controllers resync within seconds)


class RecordError(RuntimeError):
    """A step did not happen as the scenario needs; the message says which."""


# --- the webhook the apiserver calls ----------------------------------------------------


class AdmissionReceiver:
    """An HTTPS webhook on 127.0.0.1 that keeps every AdmissionReview body it receives
    and admits each pod with the MUTATED annotation added."""

    def __init__(self) -> None:
        self.bundle = certs.generate(["127.0.0.1"])
        self.bodies: list[bytes] = []
        self._arrived = threading.Condition()
        handler = type("Handler", (_ReviewHandler,), {"receiver": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        with tempfile.TemporaryDirectory() as tmp:  # ssl loads keys from files only
            certs.write(self.bundle, Path(tmp))
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(Path(tmp) / "tls.crt", Path(tmp) / "tls.key")
        self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}/mutate"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> AdmissionReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def admit(self, body: bytes) -> dict[str, Any]:
        request = json.loads(body)["request"]
        with self._arrived:
            self.bodies.append(body)
            self._arrived.notify_all()
        original = request["object"]
        mutated = copy.deepcopy(original)
        mutated["metadata"].setdefault("annotations", {})[MUTATED] = "true"
        response: dict[str, Any] = {"uid": request["uid"], "allowed": True}
        ops = jsonpatch.make_patch(original, mutated).patch
        if ops:  # an UPDATE of a pod that already carries the annotation needs none
            patch = base64.b64encode(json.dumps(ops).encode()).decode()
            response |= {"patchType": "JSONPatch", "patch": patch}
        return response

    def wait_for(self, what: str, match: Callable[[dict[str, Any]], bool]) -> bytes:
        """The first body received whose `request` matches."""
        deadline = time.monotonic() + WAIT
        with self._arrived:
            while True:
                for body in self.bodies:
                    if match(json.loads(body)["request"]):
                        return body
                if not self._arrived.wait(max(0.0, deadline - time.monotonic())):
                    raise RecordError(f"the webhook never received {what}")


class _ReviewHandler(BaseHTTPRequestHandler):
    receiver: AdmissionReceiver
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        review = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": self.receiver.admit(body),
        }
        reply = json.dumps(review).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


class RawWatch:
    """The body of one watch response, byte for byte as it arrives, read on a thread
    until the first DELETED event (the scenario's last)."""

    def __init__(self, response: Any) -> None:
        self.response = response
        self.body = bytearray()
        self.ended = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for chunk in self.response.stream(amt=None, decode_content=False):
                with self._changed:
                    self.body += chunk
                    self._changed.notify_all()
                if any(e["type"] == "DELETED" for e in self.events()):
                    break
        finally:
            self.response.close()
            with self._changed:
                self.ended = True
                self._changed.notify_all()

    def events(self) -> list[dict[str, Any]]:
        with self._changed:
            complete = bytes(self.body[: self.body.rfind(b"\n") + 1])
        return [json.loads(line) for line in complete.splitlines()]

    def wait_for(self, count: int, kind: str) -> None:
        """Until the `count`th event has arrived and is a `kind`."""
        deadline = time.monotonic() + WAIT
        with self._changed:
            while len(events := self.events()) < count and not self.ended:
                if not self._changed.wait(max(0.0, deadline - time.monotonic())):
                    break
        got = [e["type"] for e in events]
        if len(got) < count or got[count - 1] != kind:
            raise RecordError(f"watch event {count} should be {kind}; the stream has {got}")
