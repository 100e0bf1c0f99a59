"""The agent's HTTP endpoints: GET /status (JSON), /metrics (Prometheus), /healthz
(alive), /readyz (ready: pods listed and VPP usable)."""

from __future__ import annotations

import orjson
from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from injector.agent.controller import Agent
from injector.agent.status import agent_status


def create_app(agent: Agent) -> FastAPI:
    app = FastAPI(title="vcl-agent", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/status")
    def status() -> Response:
        return Response(orjson.dumps(agent_status(agent)), media_type="application/json")

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(agent.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    def healthz() -> Response:
        # Liveness: a down VPP or an unsupported one is reported (/readyz, node Event,
        # label), never a reason to restart the agent: restarting cannot fix it.
        return Response(orjson.dumps(health(agent)), media_type="application/json")

    @app.get("/readyz")
    def readyz() -> Response:
        # Readiness: the agent does its job only with the pod list and a usable VPP.
        body = health(agent)
        ready = body["synced"] and body["vppUp"]
        body["status"] = "ok" if ready else "not ready"
        return Response(orjson.dumps(body), 200 if ready else 503, media_type="application/json")

    return app


def health(agent: Agent) -> dict[str, object]:
    body: dict[str, object] = {
        "status": "ok",
        "synced": agent.synced.is_set(),
        "vppUp": agent.vpp is not None and agent.vpp_error is None,
    }
    if agent.vpp_error is not None:
        body["vppError"] = agent.vpp_error
    return body
