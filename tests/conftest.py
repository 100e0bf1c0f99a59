"""Test-wide setup: the recorded fixtures (tests/fixtures) are the only reference data,
and the VPP double serves the recorded API definitions, so the client bootstraps its
definitions from "VPP" exactly as in production (nothing outside the repository is read)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"

# FakeVpp (also through vppctl_py.testing.pytest_plugin) speaks VPP 26.06 as recorded.
os.environ.setdefault("VPP_FAKE_DEFINITIONS", str(FIXTURES / "vpp" / "api-definitions.json"))
# A developer's VPP_API_DIR would make the client load files instead of asking VPP:
# the tests exercise the production path (definitions from the running VPP).
os.environ.pop("VPP_API_DIR", None)
