"""e2e against a real cluster (KUBECONFIG; docs/e2e.md): the add-on installed from this
checkout (`kubectl apply -k manifests/default`, by the install test or already there),
images named as the manifests name them (e2e/cluster/images.py builds them without a
registry), and the e2e app image `vcl-e2e/app:minbase`. Every test skips with the reason
when there is no cluster; on a cluster nothing is skipped."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest
from kubernetes import client, config
from waiting import eventually

from e2e.cluster.support import ADDON_NAMESPACE, REPO, addon_ready, kubectl


@pytest.fixture(scope="session")
def api() -> Any:
    if not os.environ.get("KUBECONFIG") and not os.path.exists(
        os.path.expanduser("~/.kube/config")
    ):
        pytest.skip("no cluster: set KUBECONFIG to run the cluster e2e tests")
    try:
        config.load_kube_config()
        client.CoreV1Api().list_namespace(limit=1, _request_timeout=5)
    except Exception as exc:  # any failure to reach it is a reason to skip, said plainly
        pytest.skip(f"cluster from KUBECONFIG not reachable: {exc}")
    return client.ApiClient()


@pytest.fixture(scope="session")
def installed(api: Any) -> Any:
    """The add-on, installed from this checkout if it is not there yet."""
    if not addon_ready(api):
        core = client.CoreV1Api(api)

        def not_terminating() -> bool:  # a previous uninstall may still be finishing
            names = {n.metadata.name: n for n in core.list_namespace().items}
            return (
                ADDON_NAMESPACE not in names
                or not names[ADDON_NAMESPACE].metadata.deletion_timestamp
            )

        eventually("vcl-system to finish terminating", not_terminating, timeout=300, interval=3)
        kubectl("apply", "-k", str(REPO / "manifests" / "default"))
        eventually("the add-on Ready", lambda: addon_ready(api), timeout=300, interval=3)
    return api


@pytest.fixture
def namespace(installed: Any) -> Iterator[str]:
    core = client.CoreV1Api(installed)
    name = f"vcl-e2e-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"vcl-injection": "enabled"}}})
    yield name
    core.delete_namespace(name, grace_period_seconds=0)


@pytest.fixture(scope="session")
def addon_namespace() -> str:
    return ADDON_NAMESPACE


@pytest.fixture(scope="session")
def wait_for() -> Callable[..., Any]:
    return partial(eventually, timeout=180.0, interval=2.0)
