"""Shared test fixtures: where the reference data in ../shared lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VCL_SHARED_DIR", REPO.parent / "shared"))

# Tests use VPP 26.06's API definitions from ../shared unless told otherwise.
os.environ.setdefault("VPP_API_DIR", str(SHARED / "vpp-api"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"reference data not found at {SHARED}: CI clones ../shared beside the repo")
    return SHARED
