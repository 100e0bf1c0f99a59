"""Retry with exponential backoff, for reconnecting to a VPP that is (re)starting."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Delays initial, initial*factor, ... capped at max_delay; `attempts` tries in all
    (None: forever). `sleep` is injectable so tests never wait."""

    initial: float = 0.1
    factor: float = 2.0
    max_delay: float = 5.0
    attempts: int | None = 20
    sleep: Callable[[float], None] = time.sleep

    def delays(self) -> list[float]:
        """The delays between attempts when `attempts` is set (for logs and tests)."""
        count = (self.attempts or 1) - 1
        return [min(self.max_delay, self.initial * self.factor**i) for i in range(count)]


def retry(
    attempt: Callable[[], T], backoff: Backoff, *, retry_on: tuple[type[Exception], ...]
) -> T:
    """Call `attempt` until it returns; re-raise the last error when attempts run out."""
    tries = 0
    while True:
        tries += 1
        try:
            return attempt()
        except retry_on:
            if backoff.attempts is not None and tries >= backoff.attempts:
                raise
        backoff.sleep(min(backoff.max_delay, backoff.initial * backoff.factor ** (tries - 1)))
