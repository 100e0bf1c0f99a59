"""e2e against a real cluster with vcl-injector installed (kubectl apply -k
manifests/default): found through KUBECONFIG; every test skips with the reason when
there is no cluster, or the add-on is not installed in it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest
from waiting import eventually

try:
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException
except ImportError:  # pragma: no cover - the package is a dependency
    pytest.skip("the kubernetes package is not installed", allow_module_level=True)

ADDON_NAMESPACE = os.environ.get("VCL_ADDON_NAMESPACE", "vcl-system")


@pytest.fixture(scope="session")
def api() -> Any:
    if not os.environ.get("KUBECONFIG") and not os.path.exists(
        os.path.expanduser("~/.kube/config")
    ):
        pytest.skip("no cluster: set KUBECONFIG to run the cluster e2e tests")
    try:
        config.load_kube_config()
        core = client.CoreV1Api()
        core.list_namespace(limit=1, _request_timeout=5)
    except Exception as exc:  # any failure to reach it is a reason to skip, said plainly
        pytest.skip(f"cluster from KUBECONFIG not reachable: {exc}")
    admission = client.AdmissionregistrationV1Api()
    try:
        admission.read_mutating_webhook_configuration("vcl-injector")
    except ApiException:
        pytest.skip("vcl-injector is not installed (kubectl apply -k manifests/default)")
    return client.ApiClient()


@pytest.fixture
def namespace(api: Any) -> Iterator[str]:
    core = client.CoreV1Api(api)
    name = f"vcl-e2e-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"vcl-injection": "enabled"}}})
    yield name
    core.delete_namespace(name)


@pytest.fixture(scope="session")
def addon_namespace() -> str:
    return ADDON_NAMESPACE


@pytest.fixture(scope="session")
def wait_for() -> Callable[..., Any]:
    return partial(eventually, timeout=180.0, interval=2.0)
