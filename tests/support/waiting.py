"""Waiting for a condition in tests that talk to threads or real clusters."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest


def eventually(
    what: str, check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.02
) -> Any:
    """check()'s first truthy result; fails the test, naming `what`, after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
