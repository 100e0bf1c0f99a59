"""Watching one node's pods: list, then watch from the list's resourceVersion; a 410
(resourceVersion too old) or a dropped stream leads to a relist, API errors to a backoff.
Pods are handed over as plain JSON dicts (the API server's own shape)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as Urllib3Error

log = logging.getLogger("vcl_agent")

Pod = dict[str, Any]


@dataclass
class WatchStats:
    lists: int = 0
    watches: int = 0
    expired: int = 0
    errors: int = 0


class PodWatch:
    """Keeps `on_sync(all pods)` and `on_event(type, pod)` informed about a node's pods.

    on_sync is called after every (re)list with the complete set, so nothing is missed
    across reconnects: the consumer replaces its cache. Events between lists are applied
    in order. The same pod may be seen twice (relist); consumers must be idempotent.
    """

    def __init__(
        self,
        api: Any,
        node: str,
        *,
        on_sync: Callable[[dict[str, Pod]], None],
        on_event: Callable[[str, Pod], None],
        watch_timeout: int = 300,
        backoff_max: float = 30.0,
    ) -> None:
        self.core = client.CoreV1Api(api)
        self.selector = f"spec.nodeName={node}"
        self._lister: Callable[..., Any] = self.core.list_pod_for_all_namespaces
        self._kwargs: dict[str, Any] = {"field_selector": self.selector}
        self.what = "pod"
        self.on_sync, self.on_event = on_sync, on_event
        self.watch_timeout = watch_timeout
        self.backoff_max = backoff_max
        self.stats = WatchStats()
        self._watch: watch.Watch | None = None

    def list(self) -> str:
        response: Any = self._lister(**self._kwargs, _preload_content=False)
        body = json.loads(response.data)
        pods = {p["metadata"]["uid"]: p for p in body.get("items") or []}
        self.stats.lists += 1
        self.on_sync(pods)
        return str(body["metadata"]["resourceVersion"])

    def watch_from(self, version: str, stop: threading.Event) -> str:
        """Stream events until the stream ends; returns the last resourceVersion seen."""
        self._watch = watch.Watch()
        self.stats.watches += 1
        for event in self._watch.stream(
            self._lister,
            **self._kwargs,
            resource_version=version,
            timeout_seconds=self.watch_timeout,
            allow_watch_bookmarks=True,
        ):
            if stop.is_set():
                break
            kind = event["type"]
            raw = event.get("raw_object") or {}
            version = str(raw.get("metadata", {}).get("resourceVersion", version))
            if kind in ("ADDED", "MODIFIED", "DELETED"):
                self.on_event(kind, raw)
        return version

    def run(self, stop: threading.Event) -> None:
        delay = 0.5
        version: str | None = None
        while not stop.is_set():
            try:
                if version is None:
                    version = self.list()
                version = self.watch_from(version, stop)
                delay = 0.5
            except ApiException as exc:
                if exc.status == 410:
                    # Our resourceVersion left the watch cache: relist (the full set
                    # goes to on_sync, so nothing that happened meanwhile is lost).
                    self.stats.expired += 1
                    log.info("watch expired (410); relisting")
                    version = None
                    continue
                self._failed(f"API error {exc.status} {exc.reason}")
                version = None
                stop.wait(delay)
                delay = min(delay * 2, self.backoff_max)
            except (Urllib3Error, OSError, ValueError) as exc:
                self._failed(f"connection to the API server failed: {exc}")
                version = None
                stop.wait(delay)
                delay = min(delay * 2, self.backoff_max)

    def _failed(self, why: str) -> None:
        self.stats.errors += 1
        log.warning("%s watch: %s; retrying", self.what, why)

    def stop(self) -> None:
        if self._watch is not None:
            self._watch.stop()


class PolicyWatch(PodWatch):
    """The same for every NetworkPolicy of the cluster (the node's endpoint table leaves
    out the pods they select): on_sync(all, by uid), on_event(type, policy)."""

    def __init__(
        self,
        api: Any,
        *,
        on_sync: Callable[[dict[str, Pod]], None],
        on_event: Callable[[str, Pod], None],
        watch_timeout: int = 300,
        backoff_max: float = 30.0,
    ) -> None:
        super().__init__(api, "", on_sync=on_sync, on_event=on_event,
                         watch_timeout=watch_timeout, backoff_max=backoff_max)  # fmt: skip
        self._lister = client.NetworkingV1Api(api).list_network_policy_for_all_namespaces
        self._kwargs = {}
        self.what = "NetworkPolicy"
