"""The agent's pod watch (injector/kube/pods.py, through the real kubernetes client)
against bodies a real kube-apiserver sent, served verbatim from tests/fixtures/k8s
(recorded by e2e/record/k8s.py). Covers: the listed pod reaches on_sync; every watch
event reaches on_event in order, as sent, with what the agent reads (uid, nodeName,
podIP once kubelet reported it, deletionTimestamp on graceful deletion); the next watch
resumes from the last event's resourceVersion; the recorded answer to a too-old
resourceVersion (HTTP 200, one ERROR event with code 410) makes the watch relist."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from kubernetes import client

from injector.kube.pods import PodWatch

K8S = Path(__file__).resolve().parents[1] / "fixtures" / "k8s"
NODE = "node-a"  # the node e2e/record/k8s.py binds its pods to

Pod = dict[str, Any]


@dataclass
class Replay:
    """Answers each pod list or watch request with the next recorded body of its kind;
    once a kind's bodies are used up, an empty answer (a watch that timed out)."""

    lists: list[str]
    watches: list[str]
    requests: list[dict[str, str]] = field(default_factory=list)

    def answer(self, query: dict[str, str]) -> tuple[bytes, bool]:
        self.requests.append(query)
        streaming = query.get("watch") in ("1", "true", "True")
        queue = self.watches if streaming else self.lists
        body = (K8S / queue.pop(0)).read_bytes() if queue else b""
        return body, streaming


class _Handler(BaseHTTPRequestHandler):
    replay: Replay
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path != "/api/v1/pods":
            self.send_error(404)
            return
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        body, streaming = self.replay.answer(query)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if not streaming:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        # Like the apiserver: chunked, one flush per event, then the end of the stream.
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for line in body.splitlines(keepends=True):
            self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


@pytest.fixture
def replay() -> Iterator[tuple[Replay, Any]]:
    script = Replay(
        lists=["pods-list.json", "pods-list.json"],
        watches=["pods-watch.jsonl", "pods-watch-gone.jsonl"],
    )
    handler = type("Handler", (_Handler,), {"replay": script})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    cfg = client.Configuration()
    cfg.host = f"http://127.0.0.1:{server.server_address[1]}"
    with client.ApiClient(cfg) as api:
        yield script, api
    server.shutdown()
    server.server_close()


def recorded(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (K8S / name).read_bytes().splitlines()]


@dataclass
class Seen:
    """What the agent is handed; the watch is stopped after the relist."""

    stop: threading.Event
    syncs: list[dict[str, Pod]] = field(default_factory=list)
    events: list[tuple[str, Pod]] = field(default_factory=list)

    def sync(self, pods: dict[str, Pod]) -> None:
        self.syncs.append(pods)
        if len(self.syncs) == 2:
            self.stop.set()

    def event(self, kind: str, pod: Pod) -> None:
        self.events.append((kind, pod))


@pytest.fixture
def seen(replay: tuple[Replay, Any]) -> Iterator[tuple[Seen, PodWatch, Replay]]:
    script, api = replay
    stop = threading.Event()
    consumer = Seen(stop)
    watch = PodWatch(api, NODE, on_sync=consumer.sync, on_event=consumer.event, watch_timeout=5)
    thread = threading.Thread(target=watch.run, args=(stop,), daemon=True)
    thread.start()
    thread.join(timeout=20)
    stop.set()
    assert not thread.is_alive(), "the pod watch did not finish the recorded exchange"
    yield consumer, watch, script


def test_the_listed_pod_reaches_the_agent(seen: tuple[Seen, PodWatch, Replay]) -> None:
    consumer, _, script = seen
    listed = json.loads((K8S / "pods-list.json").read_bytes())
    [pod] = listed["items"]
    assert consumer.syncs[0] == {pod["metadata"]["uid"]: pod}
    assert pod["spec"]["nodeName"] == NODE
    assert script.requests[0]["fieldSelector"] == f"spec.nodeName={NODE}"
    assert "watch" not in script.requests[0]


def test_watch_events_arrive_in_order_with_what_the_agent_reads(
    seen: tuple[Seen, PodWatch, Replay],
) -> None:
    consumer, _, script = seen
    events = recorded("pods-watch.jsonl")
    assert consumer.events == [(e["type"], e["object"]) for e in events]
    kinds = [kind for kind, _ in consumer.events]
    assert kinds == ["ADDED", "MODIFIED", "MODIFIED", "MODIFIED", "MODIFIED", "DELETED"]
    pods = [pod for _, pod in consumer.events]
    assert len({p["metadata"]["uid"] for p in pods}) == 1
    assert all(p["spec"]["nodeName"] == NODE for p in pods)
    # ADDED, annotated: Pending without an IP; from the kubelet's status patch on: podIP.
    assert [p["status"].get("podIP") for p in pods] == [None, None] + ["10.244.1.5"] * 4
    assert [p["status"]["phase"] for p in pods] == ["Pending"] * 2 + ["Running"] * 4
    # Graceful deletion is a MODIFIED with deletionTimestamp; the forced one shortens the
    # grace to 0; only DELETED removes the pod.
    assert ["deletionTimestamp" in p["metadata"] for p in pods] == [False] * 3 + [True] * 3
    graces = [p["metadata"].get("deletionGracePeriodSeconds") for p in pods]
    assert graces == [None, None, None, 30, 0, 0]
    # The watch asked for events after the list, and the next one resumes after DELETED.
    listed = json.loads((K8S / "pods-list.json").read_bytes())
    watches = [r for r in script.requests if r.get("watch")]
    assert watches[0]["resourceVersion"] == listed["metadata"]["resourceVersion"]
    assert watches[1]["resourceVersion"] == pods[-1]["metadata"]["resourceVersion"]
    assert all(r["fieldSelector"] == f"spec.nodeName={NODE}" for r in watches)


def test_the_recorded_410_makes_the_watch_relist(seen: tuple[Seen, PodWatch, Replay]) -> None:
    consumer, watch, script = seen
    [gone] = recorded("pods-watch-gone.jsonl")
    assert gone["type"] == "ERROR" and gone["object"]["code"] == 410
    assert watch.stats.expired == 1 and watch.stats.errors == 0
    assert watch.stats.lists == 2
    # list, watch, watch (410), relist, and the watch the stop ends.
    assert ["watch" in r for r in script.requests] == [False, True, True, False, True]
    # The relist hands over the complete set again: the pod from the list, not the
    # deleted one from the watch.
    assert consumer.syncs[1] == consumer.syncs[0]
