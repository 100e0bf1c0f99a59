"""Building a kubernetes ApiClient: in-cluster config in a pod, a kubeconfig elsewhere."""

from __future__ import annotations

import os
from typing import Any

from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException


class KubeConfigError(RuntimeError):
    """No usable Kubernetes credentials; the message says where we looked."""


def api_client(kubeconfig: str | None = None) -> Any:
    """In-cluster when running in a pod and no kubeconfig is given, else the kubeconfig."""
    try:
        if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config()
            return client.ApiClient()
        cfg = client.Configuration()
        config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
        return client.ApiClient(configuration=cfg)
    except (ConfigException, OSError) as exc:
        where = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        raise KubeConfigError(
            f"no Kubernetes credentials: not in a pod, and {where} is unusable ({exc})"
        ) from exc
