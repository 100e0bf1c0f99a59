"""A small Kubernetes API server double for agent tests: the real kubernetes client
talks HTTP to it. Shapes follow the apiserver captures in tests/fixtures/k8s (made by
e2e/record/k8s.py; tests/agent/test_recorded_watch.py serves them verbatim): a PodList
with metadata.resourceVersion, watch events one JSON object per line, and for a too-old
resourceVersion HTTP 200 with one ERROR event (Status, code 410) and the end."""

from __future__ import annotations

import json
import queue
import re
import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import jsonpatch
from kubernetes import client

Pod = dict[str, Any]


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}  # fmt: skip


def _merge(target: dict[str, Any], patch: dict[str, Any], *, conditions: bool) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif key == "conditions" and conditions and isinstance(value, list):
            current = {c.get("type"): c for c in target.get(key, [])}
            for cond in value:
                current[cond.get("type")] = cond
            target[key] = list(current.values())
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value, conditions=conditions)
        else:
            target[key] = value


class KubeDouble:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.rv = 100
        self.pods: dict[tuple[str, str], Pod] = {}
        self.nodes: dict[str, dict[str, Any]] = {}
        self.namespaces: dict[str, dict[str, Any]] = {}
        self.history: list[tuple[int, str, Pod]] = []
        self.compacted_before = 0
        self.watchers: list[queue.Queue[tuple[int, str, Pod] | None]] = []
        self.events: list[dict[str, Any]] = []
        self.evictions: list[tuple[str, str]] = []
        self.eviction_blocked: set[tuple[str, str]] = set()  # as if a PDB forbade these
        self.proxies: dict[tuple[str, str, int], Callable[[str], tuple[int, bytes]]] = {}
        self.requests: list[tuple[str, str]] = []
        self.secrets: dict[tuple[str, str], dict[str, Any]] = {}
        self.webhook_configs: dict[str, dict[str, Any]] = {}
        self.policies: dict[tuple[str, str], dict[str, Any]] = {}  # NetworkPolicies
        handler = type("Handler", (_Handler,), {"double": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> KubeDouble:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.drop_watches()
        self.server.shutdown()
        self.server.server_close()

    def api_client(self) -> Any:
        cfg = client.Configuration()
        cfg.host = self.url
        return client.ApiClient(cfg)

    # --- test side --------------------------------------------------------------------

    def _bump(self, kind: str, pod: Pod) -> None:
        self.rv += 1
        pod["metadata"]["resourceVersion"] = str(self.rv)
        snapshot = json.loads(json.dumps(pod))
        self.history.append((self.rv, kind, snapshot))
        for watcher in self.watchers:
            watcher.put((self.rv, kind, snapshot))

    def _add(self, store: dict[tuple[str, str], Pod], obj: Pod) -> Pod:
        with self.lock:
            meta = obj.setdefault("metadata", {})
            meta.setdefault("namespace", "default")
            meta.setdefault("uid", str(uuid.uuid4()))
            store[(meta["namespace"], meta["name"])] = obj
            self._bump("ADDED", obj)
            return obj

    def create_pod(self, pod: Pod) -> Pod:
        return self._add(self.pods, pod)

    def delete_pod(self, namespace: str, name: str) -> None:
        with self.lock:
            pod = self.pods.pop((namespace, name))
            self._bump("DELETED", pod)

    def create_policy(self, policy: dict[str, Any]) -> dict[str, Any]:
        """A NetworkPolicy (its watch shares the pods' history, told apart by kind)."""
        policy.setdefault("kind", "NetworkPolicy")
        return self._add(self.policies, policy)

    def delete_policy(self, namespace: str, name: str) -> None:
        with self.lock:
            self._bump("DELETED", self.policies.pop((namespace, name)))

    def compact(self) -> None:
        """Every resourceVersion until now leaves the watch cache (watches from it: 410)."""
        with self.lock:
            self.compacted_before = self.rv + 1

    def drop_watches(self, *, clean: bool = False) -> None:
        """End every open watch: abruptly (a broken connection), or `clean`ly, as at the
        watch's timeout, after which a client watches again from its last version."""
        with self.lock:
            for watcher in self.watchers:
                watcher.put(("end", None) if clean else None)  # type: ignore[arg-type]
            self.watchers.clear()


class _Handler(BaseHTTPRequestHandler):
    double: KubeDouble
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, code: int, body: Any, content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"null")

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        d = self.double
        d.requests.append(("GET", url.path))
        if m := re.fullmatch(
            r"/api/v1/namespaces/([^/]+)/pods/([^/:]+)(?::(\d+))?/proxy/(.*)", unquote(url.path)
        ):
            handler = d.proxies.get((m[1], m[2], int(m[3] or 80)))
            if handler is None:
                return self._send(503, _status(503, "ServiceUnavailable", "no endpoint"))
            code, body = handler(m[4])
            return self._send(code, body)
        if m := re.fullmatch(r"/api/v1/namespaces/([^/]+)/secrets/([^/]+)", url.path):
            found = d.secrets.get((m[1], m[2]))
            return (
                self._send(200, found)
                if found
                else self._send(404, _status(404, "NotFound", f'secrets "{m[2]}" not found'))
            )
        if m := re.fullmatch(
            r"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/([^/]+)", url.path
        ):
            found = d.webhook_configs.get(m[1])
            return (
                self._send(200, found) if found else self._send(404, _status(404, "NotFound", m[1]))
            )
        if url.path == "/api/v1/namespaces":
            items = [
                {"metadata": {"name": n, "labels": labels}} for n, labels in d.namespaces.items()
            ]
            return self._send(
                200,
                {
                    "kind": "NamespaceList",
                    "apiVersion": "v1",
                    "metadata": {"resourceVersion": str(d.rv)},
                    "items": items,
                },
            )
        if url.path == "/apis/networking.k8s.io/v1/networkpolicies":
            if query.get("watch") in ("1", "true"):
                return self._watch(
                    int(query.get("resourceVersion") or d.rv),
                    lambda o: o.get("kind") == "NetworkPolicy",
                    float(query.get("timeoutSeconds") or 30),
                )
            with d.lock:
                listed = {"kind": "NetworkPolicyList", "apiVersion": "networking.k8s.io/v1",
                          "metadata": {"resourceVersion": str(d.rv)},
                          "items": list(d.policies.values())}  # fmt: skip
            return self._send(200, listed)
        m = re.fullmatch(r"/api/v1(?:/namespaces/([^/]+))?/pods", url.path)
        if not m:
            return self._send(404, _status(404, "NotFound", f"{url.path} not found"))
        node = None
        selector = query.get("fieldSelector", "")
        if selector.startswith("spec.nodeName="):
            node = selector.split("=", 1)[1]

        def wanted(pod: Pod) -> bool:
            if pod.get("kind", "Pod") != "Pod":
                return False
            return (node is None or pod.get("spec", {}).get("nodeName") == node) and (
                m[1] is None or pod["metadata"]["namespace"] == m[1]
            )

        if query.get("watch") in ("1", "true"):
            return self._watch(
                int(query.get("resourceVersion") or d.rv),
                wanted,
                float(query.get("timeoutSeconds") or 30),
            )
        with d.lock:
            items = [p for p in d.pods.values() if wanted(p)]
            body = {
                "kind": "PodList",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": str(d.rv)},
                "items": items,
            }
        self._send(200, body)

    def _watch(self, since: int, wanted: Callable[[Pod], bool], timeout: float) -> None:
        d = self.double
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def chunk(obj: Any) -> None:
            line = json.dumps(obj).encode() + b"\n"
            self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
            self.wfile.flush()

        inbox: queue.Queue[tuple[int, str, Pod] | None] = queue.Queue()
        with d.lock:
            if since < d.compacted_before:
                chunk(
                    {
                        "type": "ERROR",
                        "object": _status(410, "Expired", f"too old resource version: {since}"),
                    }
                )
                self.wfile.write(b"0\r\n\r\n")
                return
            backlog = [e for e in d.history if e[0] > since]
            d.watchers.append(inbox)
        try:
            for _, kind, pod in backlog:
                if wanted(pod):
                    chunk({"type": kind, "object": pod})
            while True:
                try:
                    item = inbox.get(timeout=timeout)
                except queue.Empty:
                    break
                if item is None:  # dropped: end the connection without the final chunk
                    self.close_connection = True
                    return
                if item[0] == "end":
                    break
                if wanted(item[2]):
                    chunk({"type": item[1], "object": item[2]})
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass
        finally:
            with d.lock:
                if inbox in d.watchers:
                    d.watchers.remove(inbox)

    def do_PUT(self) -> None:
        d = self.double
        path = urlparse(self.path).path
        d.requests.append(("PUT", path))
        body = self._body()
        if m := re.fullmatch(r"/api/v1/namespaces/([^/]+)/secrets/([^/]+)", path):
            d.secrets[(m[1], m[2])] = body
            return self._send(200, body)
        self._send(404, _status(404, "NotFound", path))

    def do_PATCH(self) -> None:
        d = self.double
        path = urlparse(self.path).path
        d.requests.append(("PATCH", path))
        body = self._body()
        webhook = re.fullmatch(
            r"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/([^/]+)", path
        )
        if webhook:
            config = d.webhook_configs.get(webhook[1])
            if config is None:
                return self._send(404, _status(404, "NotFound", webhook[1]))
            if "json-patch" not in (self.headers.get("Content-Type") or ""):
                return self._send(415, _status(415, "UnsupportedMediaType", "want json-patch"))
            d.webhook_configs[webhook[1]] = jsonpatch.apply_patch(config, body)
            return self._send(200, d.webhook_configs[webhook[1]])
        strategic = "strategic" in (self.headers.get("Content-Type") or "")
        if m := re.fullmatch(r"/api/v1/nodes/([^/]+)", path):
            with d.lock:
                node = d.nodes.setdefault(
                    m[1], {"kind": "Node", "apiVersion": "v1", "metadata": {"name": m[1]}}
                )
                _merge(node, body, conditions=False)
                return self._send(200, node)
        m = re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods/([^/]+)(/status)?", path)
        if not m:
            return self._send(404, _status(404, "NotFound", path))
        with d.lock:
            pod = d.pods.get((m[1], m[2]))
            if pod is None:
                return self._send(404, _status(404, "NotFound", f'pods "{m[2]}" not found'))
            if m[3]:
                _merge(pod.setdefault("status", {}), body.get("status", {}), conditions=strategic)
            else:
                _merge(pod, body, conditions=strategic)
            d._bump("MODIFIED", pod)
            self._send(200, pod)

    def do_POST(self) -> None:
        d = self.double
        path = urlparse(self.path).path
        d.requests.append(("POST", path))
        body = self._body()
        if m := re.fullmatch(r"/api/v1/namespaces/([^/]+)/secrets", path):
            key = (m[1], body["metadata"]["name"])
            if key in d.secrets:
                return self._send(409, _status(409, "AlreadyExists", key[1]))
            d.secrets[key] = body
            return self._send(201, body)
        if re.fullmatch(r"/api/v1/namespaces/[^/]+/events", path):
            with d.lock:
                d.events.append(body)
            return self._send(201, body)
        if m := re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods/([^/]+)/eviction", path):
            if (m[1], m[2]) in d.eviction_blocked:
                return self._send(
                    429,
                    _status(
                        429,
                        "TooManyRequests",
                        "Cannot evict pod as it would violate the pod's disruption budget.",
                    ),
                )
            with d.lock:
                if (m[1], m[2]) not in d.pods:
                    return self._send(404, _status(404, "NotFound", m[2]))
                d.evictions.append((m[1], m[2]))
                d.delete_pod(m[1], m[2])
            return self._send(201, _status(201, "", ""))
        self._send(404, _status(404, "NotFound", path))
