"""Golden files: tests/golden/<case>.yaml through `vcl-inject` gives <case>.injected.yaml.

Covers: every workload kind, multi-document and List input, passthrough of other kinds,
opt-out/hostNetwork/excluded namespaces (unchanged), existing LD_PRELOAD (value and
valueFrom), init containers and native sidecars, Istio-injected pods, pod dataplane, all
per-pod settings. Also: no golden file without its input, every injected object valid
against the Kubernetes 1.29 OpenAPI schema, and re-injecting a golden output changes
nothing. `UPDATE_GOLDEN=1 pytest tests/inject` rewrites the expected files.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from injector.cli.inject import app

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
CASES = sorted(p for p in GOLDEN.glob("*.yaml") if not p.name.endswith(".injected.yaml"))
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def run_inject(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def expected_path(case: Path) -> Path:
    return case.with_name(case.stem + ".injected.yaml")


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_golden(case: Path) -> None:
    code, out, err = run_inject("-f", str(case), "-q")
    assert code == 0, err
    expected = expected_path(case)
    if UPDATE:
        expected.write_text(out)
    assert expected.exists(), f"no golden {expected.name}: run with UPDATE_GOLDEN=1"
    want = expected.read_text()
    if out != want:
        diff = "".join(
            difflib.unified_diff(
                want.splitlines(True), out.splitlines(True), "expected", "actual", n=2
            )
        )
        pytest.fail(f"{case.name} differs from {expected.name}:\n{diff}")


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 20


def test_every_golden_has_its_input() -> None:
    orphans = [
        p.name
        for p in GOLDEN.glob("*.injected.yaml")
        if not p.with_name(p.name.replace(".injected.yaml", ".yaml")).exists()
    ]
    assert not orphans, f"golden files without an input case: {orphans}"


def _objects(docs: list[object]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") == "List":
            out.extend(_objects(doc["items"]))
        elif isinstance(doc, dict):
            out.append(doc)
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_injected_objects_are_valid_kubernetes(case: Path) -> None:
    docs = list(yaml.safe_load_all(expected_path(case).read_text()))
    for obj in _objects(docs):
        if obj.get("kind") == "Namespace":
            continue
        kubernetes_validate.validate(obj, "1.29.0", strict=True)


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_reinjecting_the_output_changes_nothing(case: Path) -> None:
    once = expected_path(case).read_text()
    code, twice, err = run_inject("-f", "-", "-q", stdin=once)
    assert code == 0, err
    assert twice == once
