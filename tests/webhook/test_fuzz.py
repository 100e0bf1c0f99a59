"""Fuzzing /mutate with malformed and adversarial AdmissionReviews (hypothesis): never a
5xx, no exception escapes, and every 200 is a valid AdmissionReview echoing the uid."""

from __future__ import annotations

import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from injector.webhook.app import create_app
from injector.webhook.state import WebhookState

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10)
)
json_values = st.recursive(
    json_scalars,
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids, max_size=4)
    ),
    max_leaves=20,
)
names = st.text(alphabet="abc-", min_size=1, max_size=6)
containers = st.lists(
    st.fixed_dictionaries(
        {"name": names},
        optional={
            "env": json_values,
            "volumeMounts": json_values,
            "image": json_values,
            "restartPolicy": json_values,
        },
    ),
    max_size=3,
)
pods = st.fixed_dictionaries(
    {},
    optional={
        "metadata": st.fixed_dictionaries(
            {},
            optional={
                "annotations": st.dictionaries(
                    st.sampled_from(
                        [
                            "vcl.io/inject",
                            "vcl.io/containers",
                            "vcl.io/status",
                            "vcl.io/rx-fifo-size",
                            "vcl.io/dataplane",
                            "vcl.io/kernel-cidrs",
                            "other",
                        ]
                    ),
                    json_values | names,
                ),
                "namespace": json_values,
                "name": json_values,
            },
        ),
        "spec": st.fixed_dictionaries(
            {},
            optional={
                "containers": containers | json_values,
                "initContainers": containers | json_values,
                "volumes": json_values,
                "affinity": json_values,
                "hostNetwork": json_values,
                "readinessGates": json_values,
            },
        ),
    },
)
requests = st.fixed_dictionaries(
    {"uid": st.text(min_size=1, max_size=8)},
    optional={
        "kind": st.just({"group": "", "version": "v1", "kind": "Pod"}) | json_values,
        "operation": st.sampled_from(["CREATE", "UPDATE", "DELETE"]) | json_values,
        "namespace": json_values,
        "object": pods | json_values,
        "subResource": json_values,
        "dryRun": json_values,
    },
)
reviews = st.fixed_dictionaries(
    {"request": requests | json_values},
    optional={
        "apiVersion": st.just("admission.k8s.io/v1") | json_values,
        "kind": st.just("AdmissionReview") | json_values,
    },
)


STATE = WebhookState()


def client() -> httpx.Client:
    # A sync client over the ASGI app (httpx runs it in an event loop per request).
    transport = httpx.ASGITransport(app=create_app(STATE))
    return httpx.Client(transport=_SyncOverAsync(transport), base_url="https://webhook")


class _SyncOverAsync(httpx.BaseTransport):
    def __init__(self, inner: httpx.ASGITransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        import anyio

        async def call() -> httpx.Response:
            req = httpx.Request(
                request.method, request.url, headers=request.headers, content=request.read()
            )
            resp = await self.inner.handle_async_request(req)
            body = await resp.aread()
            return httpx.Response(resp.status_code, headers=resp.headers, content=body)

        return anyio.run(call)


def check(reply: httpx.Response, sent: Any) -> None:
    # The safety net (allowed, with an "internal error" warning) must never be needed:
    # every input is either answered or refused with a reason.
    assert "internal error" not in reply.text, reply.text
    assert reply.status_code in (200, 400, 413), reply.text
    body = reply.json()
    if reply.status_code != 200:
        assert isinstance(body["error"], str) and body["error"]
        return
    assert body["apiVersion"] == "admission.k8s.io/v1" and body["kind"] == "AdmissionReview"
    assert body["response"]["uid"] == sent["request"]["uid"]
    assert isinstance(body["response"]["allowed"], bool)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reviews)
def test_structured_garbage_never_breaks_the_webhook(review: dict[str, Any]) -> None:
    with client() as c:
        reply = c.post("/mutate", content=json.dumps(review))
    check(reply, review)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_byte_garbage_gets_400(body: bytes) -> None:
    with client() as c:
        reply = c.post("/mutate", content=body)
    assert reply.status_code in (200, 400)
    if reply.status_code == 400:
        assert reply.json()["error"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pods | json_values, st.text(max_size=12) | json_values)
def test_adversarial_pods_in_a_well_formed_create(pod: Any, namespace: Any) -> None:
    """The envelope is right (so the core runs); the pod object is anything."""
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "fuzz",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "operation": "CREATE",
            "namespace": namespace,
            "object": pod,
        },
    }
    with client() as c:
        reply = c.post("/mutate", content=json.dumps(review))
    check(reply, review)
    if reply.status_code == 200 and not isinstance(pod, dict):
        raise AssertionError("a non-object pod must be a 400")
