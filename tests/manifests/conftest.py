"""Fixtures for the manifests tests: manifests/build.py and manifests/render.py as modules,
and every overlay rendered once."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

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
def kbuild() -> ModuleType:
    return _load("build")


@pytest.fixture(scope="session")
def vpp_render() -> ModuleType:
    return _load("render")


@pytest.fixture(scope="session")
def overlays(kbuild: ModuleType) -> dict[str, list[dict[str, Any]]]:
    return {name: kbuild.build(MANIFESTS / name) for name in overlay_names()}
