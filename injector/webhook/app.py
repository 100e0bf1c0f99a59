"""The FastAPI application: /mutate, /healthz, /readyz, /metrics (and /noop for benchmarks)."""

from __future__ import annotations

import json
import time
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from injector.webhook.admission import BadReview, Outcome, parse_review, response, review_pod
from injector.webhook.state import WebhookState

# Kubernetes caps objects at ~1.5 MiB in etcd; an AdmissionReview carries at most two.
MAX_BODY = 4 * 1024 * 1024


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


def create_app(state: WebhookState, *, noop_endpoint: bool = False) -> FastAPI:
    app = FastAPI(title="vcl-injector", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.webhook = state

    @app.post("/mutate")
    async def mutate(request: Request) -> Response:
        started = time.perf_counter()
        body = await _read_body(request)
        if body is None:
            state.metrics.count_request("bad_request")
            return _json({"error": f"request body larger than {MAX_BODY} bytes"}, 413)
        try:
            review = parse_review(body)
        except BadReview as exc:
            state.metrics.count_request("bad_request")
            state.log.warning("bad AdmissionReview", extra={"fields": {"error": str(exc)}})
            return _json({"error": str(exc)}, 400)
        try:
            answer, outcome = review_pod(review, state.config)
        except BadReview as exc:
            state.metrics.count_request("bad_request")
            return _json({"error": str(exc)}, 400)
        except Exception as exc:  # never a 500: the pod is admitted uninjected, and we say so
            state.log.exception("internal error", extra={"fields": {"uid": review["uid"]}})
            outcome = Outcome(uid=review["uid"], result="error", reason=repr(exc))
            answer = response(
                review["uid"],
                allowed=True,
                warnings=[f"vcl-injector: internal error, pod not injected ({type(exc).__name__})"],
            )
        elapsed = time.perf_counter() - started
        _record(state, outcome, elapsed)
        return _json(answer)

    @app.get("/healthz")
    async def healthz() -> Response:
        return _json({"status": "ok"})

    @app.get("/readyz")
    async def readyz() -> Response:
        if state.ready:
            return _json({"status": "ready"})
        return _json(
            {"status": "not ready", "config": state.config_loaded, "certs": state.certs_loaded},
            503,
        )

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    if noop_endpoint:

        @app.post("/noop")
        async def noop(request: Request) -> Response:
            body = await _read_body(request)
            uid = ""
            if body:
                try:
                    uid = json.loads(body)["request"]["uid"]
                except (ValueError, KeyError, TypeError):
                    uid = ""
            return _json(response(uid, allowed=True))

    return app


async def _read_body(request: Request) -> bytes | None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _record(state: WebhookState, outcome: Outcome, elapsed: float) -> None:
    metrics = state.metrics
    metrics.count_request(outcome.result)
    metrics.latency.observe(elapsed)
    if outcome.result in ("injected", "skipped", "denied"):
        metrics.count_decision(outcome.result, outcome.code or "none")
    state.log.info(
        "admission",
        extra={
            "fields": {
                "uid": outcome.uid,
                "namespace": outcome.namespace,
                "pod": outcome.pod,
                "result": outcome.result,
                "decision": outcome.code,
                "reason": outcome.reason,
                "us": round(elapsed * 1e6),
            }
        },
    )
