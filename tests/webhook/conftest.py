"""Fixtures for webhook tests: the ASGI app over httpx, and the real apiserver captures
(tests/fixtures/k8s)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from injector.webhook.app import create_app
from injector.webhook.state import WebhookState

K8S = Path(__file__).resolve().parents[1] / "fixtures" / "k8s"  # e2e/record/k8s.py made them


@pytest.fixture
def state() -> WebhookState:
    return WebhookState()


@pytest.fixture
async def client(state: WebhookState) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(state, noop_endpoint=True))
    async with httpx.AsyncClient(transport=transport, base_url="https://webhook") as c:
        yield c


@pytest.fixture
def capture() -> Callable[[str], dict[str, Any]]:
    def load(name: str) -> dict[str, Any]:
        return json.loads((K8S / name).read_text())  # type: ignore[no-any-return]

    return load


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
