"""On a real cluster with the add-on: a Deployment in a labelled namespace is injected,
registered by the node agent (annotation + readiness condition) and shown healthy by
vcl-status; a pod that opts out is left alone; a bad annotation is refused at apply time
with the message; the webhook's failurePolicy (Ignore) lets pods through when it is down
and vcl-status then reports them as opted in but not injected."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from e2e.cluster.support import APP_IMAGE


def deployment(name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": annotations or {}},
                "spec": {
                    "containers": [
                        {"name": "app", "image": APP_IMAGE, "command": ["sleep", "infinity"]}
                    ]
                },
            },
        },
    }


def pods_of(api: Any, namespace: str, app: str) -> list[Any]:
    return client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=f"app={app}").items


def test_deployment_is_injected_registered_and_reported(
    api: Any, namespace: str, wait_for: Callable[..., Any]
) -> None:
    client.AppsV1Api(api).create_namespaced_deployment(namespace, deployment("web"))
    pod = wait_for("the pod", lambda: (pods_of(api, namespace, "web") or [None])[0])
    status = json.loads(pod.metadata.annotations["vcl.io/status"])
    assert status["containers"] == ["app"]
    assert [c.name for c in pod.spec.init_containers][-1] == "vcl-init"

    def registered() -> Any:
        current = client.CoreV1Api(api).read_namespaced_pod(pod.metadata.name, namespace)
        return (current.metadata.annotations or {}).get("vcl.io/registered")

    assert json.loads(wait_for("registration by vcl-agent", registered))["namespaceId"]
    out = subprocess.run(
        [sys.executable, "-m", "injector.cli.status", "-n", namespace, "-o", "json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    rows = json.loads(out.stdout)
    assert rows and rows[0]["injected"] and rows[0]["registered"].startswith("vcl-"), rows


def test_opt_out_is_left_alone(api: Any, namespace: str, wait_for: Callable[..., Any]) -> None:
    client.AppsV1Api(api).create_namespaced_deployment(
        namespace, deployment("plain", {"vcl.io/inject": "false"})
    )
    pod = wait_for("the pod", lambda: (pods_of(api, namespace, "plain") or [None])[0])
    assert "vcl.io/status" not in (pod.metadata.annotations or {})


def test_bad_annotation_is_refused_with_the_message(api: Any, namespace: str) -> None:
    pod = {
        "metadata": {"name": "bad", "annotations": {"vcl.io/eventfd": "yes"}},
        "spec": {
            "containers": [{"name": "app", "image": APP_IMAGE, "command": ["sleep", "infinity"]}]
        },
    }
    with pytest.raises(ApiException) as info:
        client.CoreV1Api(api).create_namespaced_pod(namespace, pod)
    assert "vcl.io/eventfd" in str(info.value.body) and "true" in str(info.value.body)


def test_webhook_down_lets_pods_through_and_status_reports_them(
    api: Any, namespace: str, wait_for: Callable[..., Any], addon_namespace: str
) -> None:
    apps = client.AppsV1Api(api)
    webhook = apps.read_namespaced_deployment("vcl-injector", addon_namespace)
    replicas = webhook.spec.replicas
    apps.patch_namespaced_deployment_scale(
        "vcl-injector", addon_namespace, {"spec": {"replicas": 0}}
    )
    try:
        wait_for("the webhook to stop", lambda: not pods_of_addon(api, addon_namespace))
        client.CoreV1Api(api).create_namespaced_pod(
            namespace,
            {
                "metadata": {"name": "missed"},
                "spec": {
                    "containers": [
                        {"name": "app", "image": APP_IMAGE, "command": ["sleep", "infinity"]}
                    ]
                },
            },
        )
        out = subprocess.run(
            [sys.executable, "-m", "injector.cli.status", "missed", "-n", namespace, "-o", "json"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert out.returncode == 1
        assert json.loads(out.stdout)[0]["reason"] == "opted in but not injected"
    finally:
        apps.patch_namespaced_deployment_scale(
            "vcl-injector", addon_namespace, {"spec": {"replicas": replicas}}
        )


def pods_of_addon(api: Any, addon_namespace: str) -> list[Any]:
    return (
        client.CoreV1Api(api)
        .list_namespaced_pod(addon_namespace, label_selector="app.kubernetes.io/name=vcl-injector")
        .items
    )
