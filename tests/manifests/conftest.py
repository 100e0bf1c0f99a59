"""Fixtures for the manifests tests: manifests/render.py as a module, and every overlay
rendered once by `kubectl kustomize` (what `kubectl apply -k` applies)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"


def _load(name: str) -> ModuleType:
    # manifests/ is not a package (kustomize reads it); load its scripts by path.
    spec = importlib.util.spec_from_file_location(f"manifests_{name}", MANIFESTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module


def overlay_names() -> list[str]:
    """Top-level directories of manifests/ with a kustomization (the installable units)."""
    return sorted(
        p.parent.name for p in MANIFESTS.glob("*/kustomization.yaml") if p.parent.name != "base"
    )


@pytest.fixture(scope="session")
def vpp_render() -> ModuleType:
    return _load("render")


def kustomize(directory: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl renders the manifests (as `kubectl apply -k` does)"
    out = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, f"kubectl kustomize {directory}: {out.stderr}"
    return [o for o in yaml.safe_load_all(out.stdout) if o]


@pytest.fixture(scope="session")
def overlays() -> dict[str, list[dict[str, Any]]]:
    return {name: kustomize(MANIFESTS / name) for name in overlay_names()}
