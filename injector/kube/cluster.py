"""Reads for vcl-status: pods, namespace labels, and each node agent's /status through the
API server's pod proxy (so users need no port of their own to the nodes)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as Urllib3Error

AGENT_SELECTOR = "app.kubernetes.io/name=vcl-agent"
AGENT_PORT = 9464


class ClusterError(RuntimeError):
    """The API server refused or could not be reached; the message says which call."""


@dataclass(frozen=True)
class AgentReply:
    node: str
    status: dict[str, Any] | None
    error: str | None = None


def _raw(call: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        response = call(*args, _preload_content=False, **kwargs)
        return json.loads(response.data)
    except ApiException as exc:
        raise ClusterError(f"{call.__name__}: {exc.status} {exc.reason}") from exc
    except (Urllib3Error, OSError) as exc:
        raise ClusterError(f"cannot reach the API server: {exc}") from exc


class Cluster:
    def __init__(self, api: Any, agent_namespace: str = "vcl-system") -> None:
        self.core = client.CoreV1Api(api)
        self.agent_namespace = agent_namespace

    def pods(self, namespace: str | None) -> list[dict[str, Any]]:
        if namespace is None:
            body = _raw(self.core.list_pod_for_all_namespaces)
        else:
            body = _raw(self.core.list_namespaced_pod, namespace)
        return list(body.get("items") or [])

    def namespace_labels(self) -> dict[str, dict[str, str]]:
        body = _raw(self.core.list_namespace)
        return {
            ns["metadata"]["name"]: dict(ns["metadata"].get("labels") or {})
            for ns in body.get("items") or []
        }

    def agent_status(self, node: str) -> AgentReply:
        try:
            agents = _raw(
                self.core.list_namespaced_pod,
                self.agent_namespace,
                label_selector=AGENT_SELECTOR,
                field_selector=f"spec.nodeName={node}",
            )
        except ClusterError as exc:
            return AgentReply(node, None, str(exc))
        items = agents.get("items") or []
        if not items:
            return AgentReply(node, None, f"no vcl-agent pod on node {node}")
        name = items[0]["metadata"]["name"]
        try:
            # Raw body: the client would turn a JSON answer into a Python repr string.
            response: Any = self.core.connect_get_namespaced_pod_proxy_with_path(
                f"{name}:{AGENT_PORT}", self.agent_namespace, "status", _preload_content=False
            )
            return AgentReply(node, json.loads(response.data))
        except ApiException as exc:
            return AgentReply(node, None, f"agent {name} did not answer: {exc.status} {exc.reason}")
        except (Urllib3Error, OSError, ValueError) as exc:
            return AgentReply(node, None, f"agent {name} did not answer: {exc}")
