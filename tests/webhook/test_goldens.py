"""The golden cases through the webhook: every pod template of tests/golden/<case>.yaml
sent as an AdmissionReview; applying the returned patch gives the template in
<case>.injected.yaml (the same result as vcl-inject)."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import jsonpatch
import pytest
import yaml

from injector.core.workloads import TEMPLATE_PATHS

pytestmark = pytest.mark.anyio
GOLDEN = Path(__file__).resolve().parents[1] / "golden"
CASES = sorted(p for p in GOLDEN.glob("*.yaml") if not p.name.endswith(".injected.yaml"))


def templates(docs: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        if doc.get("kind") == "List":
            found.extend(templates(doc["items"]))
            continue
        path = TEMPLATE_PATHS.get(doc.get("kind", ""))
        if path is None:
            continue
        node: Any = doc
        for key in path:
            node = node[key]
        found.append((doc.get("metadata", {}).get("namespace", "default"), node))
    return found


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
async def test_golden_through_the_webhook(client: httpx.AsyncClient, case: Path) -> None:
    inputs = templates(list(yaml.safe_load_all(case.read_text())))
    expected = templates(
        list(yaml.safe_load_all(case.with_name(case.stem + ".injected.yaml").read_text()))
    )
    assert len(inputs) == len(expected)
    for (namespace, pod), (_, want) in zip(inputs, expected, strict=True):
        review = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": str(uuid.uuid4()),
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "namespace": namespace,
                "operation": "CREATE",
                "object": pod,
                "oldObject": None,
                "dryRun": False,
            },
        }
        resp = (await client.post("/mutate", json=review)).json()["response"]
        if "patch" not in resp:
            assert resp["allowed"] is True
            got = pod
        else:
            got = jsonpatch.apply_patch(pod, json.loads(base64.b64decode(resp["patch"])))
        assert got == want
