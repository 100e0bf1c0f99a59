"""POST /mutate over HTTP (httpx against the ASGI app) with the real apiserver captures:

bare pod, ReplicaSet pod (generateName only, managedFields), dry-run, UPDATE, pod with
nodeName; opt-out; excluded namespace; invalid annotations denied with a message naming
annotation, value and accepted values; non-pod objects; malformed bodies → 400 JSON;
oversized body → 413; internal errors → allowed with a warning, never a 500; metrics and
one JSON log line per decision; /healthz, /readyz.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
import jsonpatch
import pytest

from injector.webhook import admission
from injector.webhook.state import JsonFormatter, WebhookState

pytestmark = pytest.mark.anyio
Capture = Callable[[str], dict[str, Any]]


async def post(client: httpx.AsyncClient, review: dict[str, Any]) -> dict[str, Any]:
    reply = await client.post("/mutate", json=review)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["apiVersion"] == "admission.k8s.io/v1" and body["kind"] == "AdmissionReview"
    assert body["response"]["uid"] == review["request"]["uid"]
    return body["response"]  # type: ignore[no-any-return]


def patched(review: dict[str, Any], resp: dict[str, Any]) -> dict[str, Any]:
    assert resp["patchType"] == "JSONPatch"
    ops = json.loads(base64.b64decode(resp["patch"]))
    return jsonpatch.apply_patch(review["request"]["object"], ops)  # type: ignore[no-any-return]


def status(pod: dict[str, Any]) -> dict[str, Any]:
    return json.loads(pod["metadata"]["annotations"]["vcl.io/status"])  # type: ignore[no-any-return]


async def test_bare_pod_from_the_apiserver_is_injected(
    client: httpx.AsyncClient, capture: Capture
) -> None:
    review = capture("admission-review-pod-create.json")
    resp = await post(client, review)
    assert resp["allowed"] is True
    pod = patched(review, resp)
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["vcl-init"]
    assert status(pod)["containers"] == ["app"]
    # Everything the apiserver sent is still there.
    assert (
        pod["metadata"]["managedFields"] == review["request"]["object"]["metadata"]["managedFields"]
    )


async def test_replicaset_pod_with_only_generate_name(
    client: httpx.AsyncClient,
    capture: Capture,
    state: WebhookState,
    caplog: pytest.LogCaptureFixture,
) -> None:
    review = capture("admission-review-pod-from-replicaset.json")
    assert "name" not in review["request"] and "name" not in review["request"]["object"]["metadata"]
    with caplog.at_level(logging.INFO, logger="vcl_injector"):
        resp = await post(client, review)
    pod = patched(review, resp)
    assert pod["metadata"]["generateName"] == "demo-deploy-6cc7d896f9-"
    assert "namespace" in review["request"]["object"]["metadata"]
    line = json.loads(
        JsonFormatter().format(next(r for r in caplog.records if r.msg == "admission"))
    )
    assert line["pod"] == "demo-deploy-6cc7d896f9-" and line["result"] == "injected"
    assert line["uid"] == review["request"]["uid"] and line["namespace"] == "vcl-demo"
    assert isinstance(line["us"], int)


async def test_namespace_comes_from_the_request_when_the_object_has_none(
    client: httpx.AsyncClient, capture: Capture
) -> None:
    review = capture("admission-review-pod-create.json")
    del review["request"]["object"]["metadata"]["namespace"]
    review["request"]["namespace"] = "kube-system"
    resp = await post(client, review)
    assert resp == {"uid": review["request"]["uid"], "allowed": True}


async def test_dry_run_is_answered_the_same_way(
    client: httpx.AsyncClient, capture: Capture
) -> None:
    review = capture("admission-review-pod-dryrun.json")
    assert review["request"]["dryRun"] is True
    resp = await post(client, review)
    assert status(patched(review, resp))["dataplane"] == "node"


async def test_update_is_allowed_unchanged(client: httpx.AsyncClient, capture: Capture) -> None:
    review = capture("admission-review-pod-update.json")
    resp = await post(client, review)
    assert resp == {"uid": review["request"]["uid"], "allowed": True}


async def test_pod_with_node_name_is_injected(client: httpx.AsyncClient, capture: Capture) -> None:
    review = capture("admission-review-pod-create-nodename.json")
    pod = patched(review, await post(client, review))
    assert pod["spec"]["nodeName"] == "node-a"


async def test_non_pod_object_is_allowed_unchanged(
    client: httpx.AsyncClient, capture: Capture
) -> None:
    review = capture("admission-review-pod-create.json")
    review["request"]["kind"] = {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert await post(client, review) == {"uid": review["request"]["uid"], "allowed": True}


async def test_opt_out_is_allowed_without_patch(
    client: httpx.AsyncClient, capture: Capture, state: WebhookState
) -> None:
    review = capture("admission-review-pod-create.json")
    review["request"]["object"]["metadata"]["annotations"] = {"vcl.io/inject": "false"}
    assert await post(client, review) == {"uid": review["request"]["uid"], "allowed": True}
    assert state.metrics.decisions.labels("skipped", "pod-opt-out")._value.get() == 1


@pytest.mark.parametrize(
    ("annotations", "words"),
    [
        ({"vcl.io/eventfd": "yes"}, ["vcl.io/eventfd='yes'", '"true" or "false"']),
        ({"vcl.io/inject": "maybe"}, ["vcl.io/inject='maybe'", '"true" or "false"']),
        (
            {"vcl.io/rx-fifo-size": "4MB", "vcl.io/app-scope": "x"},
            ["4MB", "64Ki", "vcl.io/app-scope='x'"],
        ),
        ({"vcl.io/containers": "ghost"}, ["ghost", "not a container of the pod"]),
    ],
)
async def test_invalid_annotations_are_denied_with_a_message(
    client: httpx.AsyncClient,
    capture: Capture,
    state: WebhookState,
    annotations: dict[str, str],
    words: list[str],
) -> None:
    review = capture("admission-review-pod-create.json")
    review["request"]["object"]["metadata"]["annotations"] = annotations
    resp = await post(client, review)
    assert resp["allowed"] is False and "patch" not in resp
    assert resp["status"]["code"] == 400
    for word in words:
        assert word in resp["status"]["message"]
    assert state.metrics.requests.labels("denied")._value.get() == 1


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"not json", "not JSON"),
        (b"[]", "JSON object"),
        (
            b'{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u"}}',
            "admission.k8s.io/v1",
        ),
        (b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}', "request: missing"),
        (
            b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":7}}',
            "request.uid",
        ),
        (
            b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Pod"},"operation":"CREATE"}}',
            "request.object",
        ),
    ],
)
async def test_malformed_bodies_get_400_with_a_json_error(
    client: httpx.AsyncClient, state: WebhookState, body: bytes, says: str
) -> None:
    reply = await client.post("/mutate", content=body, headers={"content-type": "application/json"})
    assert reply.status_code == 400
    assert says in reply.json()["error"]
    assert state.metrics.requests.labels("bad_request")._value.get() == 1


async def test_oversized_body_gets_413(client: httpx.AsyncClient) -> None:
    reply = await client.post("/mutate", content=b"x" * (5 * 1024 * 1024))
    assert reply.status_code == 413 and "larger than" in reply.json()["error"]


async def test_an_internal_error_admits_the_pod_uninjected_with_a_warning(
    client: httpx.AsyncClient,
    capture: Capture,
    state: WebhookState,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The one place a test replaces our code: there is no input that makes the core fail
    # unexpectedly (that is the point), so we simulate a bug to check the safety net.
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(admission, "injection_patch", broken)
    review = capture("admission-review-pod-create.json")
    with caplog.at_level(logging.ERROR, logger="vcl_injector"):
        resp = await post(client, review)
    assert resp["allowed"] is True and "patch" not in resp
    assert "internal error" in resp["warnings"][0]
    assert state.metrics.requests.labels("error")._value.get() == 1
    assert any(
        getattr(r, "fields", {}).get("uid") == review["request"]["uid"] for r in caplog.records
    )


async def test_warnings_reach_kubectl(client: httpx.AsyncClient, capture: Capture) -> None:
    review = capture("admission-review-pod-create.json")
    review["request"]["object"]["metadata"]["annotations"] = {"vcl.io/eventfd": "false"}
    resp = await post(client, review)
    assert any("eventfd is off" in w for w in resp["warnings"])


async def test_health_readiness_and_metrics(
    client: httpx.AsyncClient, capture: Capture, state: WebhookState
) -> None:
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).status_code == 200
    state.certs_loaded = False
    assert (await client.get("/readyz")).status_code == 503
    await post(client, capture("admission-review-pod-create.json"))
    text = (await client.get("/metrics")).text
    assert 'vcl_injector_requests_total{outcome="injected"} 1.0' in text
    assert 'vcl_injector_decisions_total{decision="injected",reason="injected"} 1.0' in text
    assert "vcl_injector_admission_duration_seconds_bucket" in text
    assert "vcl_injector_config_reloads_total" in text or "vcl_injector_config_reloads" in text


async def test_reinvocation_after_istio_adds_its_proxy(
    client: httpx.AsyncClient, capture: Capture
) -> None:
    review = capture("admission-review-pod-create.json")
    first = patched(review, await post(client, review))
    first["spec"]["containers"].append(
        {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.24.0"}
    )
    again = copy.deepcopy(review)
    again["request"]["object"] = first
    second = patched(again, await post(client, again))
    assert status(second)["containers"] == ["istio-proxy"]
    app = next(c for c in second["spec"]["containers"] if c["name"] == "app")
    assert app == review["request"]["object"]["spec"]["containers"][0]
