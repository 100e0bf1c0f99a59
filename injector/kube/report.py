"""What the agent tells Kubernetes: pod events, the vcl.io/registered annotation, the
readiness-gate condition, its node's vcl.io/vpp label, and evictions."""

from __future__ import annotations

import datetime
import json
import logging
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as Urllib3Error

from injector.core import constants as c

log = logging.getLogger("vcl_agent")
COMPONENT = "vcl-agent"


@dataclass(frozen=True)
class PodRef:
    namespace: str
    name: str
    uid: str


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class KubeReporter:
    """Every call is best effort: a failure is logged and returned as False, never raised,
    so a flaky API server cannot stop the agent from keeping VPP right."""

    def __init__(self, api: Any, node: str) -> None:
        self.core = client.CoreV1Api(api)
        self.node = node

    def _try(self, what: str, call: Any, *args: Any, **kwargs: Any) -> bool:
        try:
            call(*args, **kwargs)
            return True
        except ApiException as exc:
            log.warning("%s failed: %s %s", what, exc.status, exc.reason)
        except (Urllib3Error, OSError) as exc:
            log.warning("%s failed: %s", what, exc)
        return False

    def _event(self, namespace: str, involved: dict[str, str], reason: str, message: str,
               *, warning: bool) -> bool:  # fmt: skip
        now = _now()
        body = {
            "metadata": {"generateName": f"{involved['name']}.vcl-", "namespace": namespace},
            "involvedObject": {"apiVersion": "v1", **involved},
            "reason": reason,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": COMPONENT, "host": self.node},
            "reportingComponent": COMPONENT,
            "reportingInstance": f"{COMPONENT}-{self.node}",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        what = f"{involved['kind'].lower()} event"
        return self._try(what, self.core.create_namespaced_event, namespace, body)

    def event(self, pod: PodRef, reason: str, message: str, *, warning: bool = False) -> bool:
        involved = {"kind": "Pod", "name": pod.name, "namespace": pod.namespace, "uid": pod.uid}
        return self._event(pod.namespace, involved, reason, message, warning=warning)

    def registered(self, pod: PodRef, ns_id: str) -> bool:
        value = json.dumps({"namespaceId": ns_id, "node": self.node, "time": _now()})
        body = {"metadata": {"annotations": {c.ANNOTATION_REGISTERED: value}}}
        return self._try(
            "annotate pod",
            self.core.patch_namespaced_pod,
            pod.name,
            pod.namespace,
            body,
            _content_type="application/merge-patch+json",
        )

    def condition(self, pod: PodRef, ready: bool, reason: str, message: str) -> bool:
        # Strategic merge: conditions merge by type, kubelet's own stay untouched.
        body = {
            "status": {
                "conditions": [
                    {
                        "type": c.READINESS_GATE,
                        "status": "True" if ready else "False",
                        "reason": reason,
                        "message": message[:1024],
                        "lastTransitionTime": _now(),
                    }
                ]
            }
        }
        return self._try(
            "pod condition",
            self.core.patch_namespaced_pod_status,
            pod.name,
            pod.namespace,
            body,
            _content_type="application/strategic-merge-patch+json",
        )

    def node_event(self, reason: str, message: str, *, warning: bool = False) -> bool:
        """An Event on this node (namespace default and uid = name, as the kubelet's own
        node events): `kubectl describe node` shows why VPP cannot be used here."""
        involved = {"kind": "Node", "name": self.node, "uid": self.node}
        return self._event("default", involved, reason, message, warning=warning)

    def node_label(self, ready: bool) -> bool:
        value = c.NODE_LABEL_VPP_READY if ready else None  # None removes the label
        body = {"metadata": {"labels": {c.NODE_LABEL_VPP: value}}}
        return self._try(
            "node label",
            self.core.patch_node,
            self.node,
            body,
            _content_type="application/merge-patch+json",
        )

    def evict(self, pod: PodRef) -> bool:
        """Through the Eviction API, so PodDisruptionBudgets are honoured (429 = blocked)."""
        body = client.V1Eviction(
            metadata=client.V1ObjectMeta(name=pod.name, namespace=pod.namespace)
        )
        return self._try(
            "eviction", self.core.create_namespaced_pod_eviction, pod.name, pod.namespace, body
        )
