"""The agent's HTTP endpoints: GET /status (JSON), /metrics (Prometheus), /healthz."""

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
        # Alive is not "VPP up": a down VPP is reported, not a reason to restart the agent.
        body = {"status": "ok", "synced": agent.synced.is_set(), "vppUp": agent.vpp is not None}
        return Response(orjson.dumps(body), media_type="application/json")

    return app
