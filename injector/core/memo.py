"""A bounded memo keyed by a config object's identity (plus a hashable extra key).

Pure functions of (config, key) are cached: the webhook keeps one config object until
a reload, so identity is the cheap key; the entry holds the config itself so an id is
never reused while cached.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from injector.core.config import InjectorConfig

T = TypeVar("T")


class ConfigMemo(Generic[T]):
    def __init__(self, compute: Callable[[InjectorConfig, Hashable], T], size: int = 64) -> None:
        self._compute = compute
        self._size = size
        self._cache: OrderedDict[tuple[int, Hashable], tuple[InjectorConfig, T]] = OrderedDict()

    def get(self, config: InjectorConfig, key: Hashable = None) -> T:
        slot = (id(config), key)
        hit = self._cache.get(slot)
        if hit is not None and hit[0] is config:
            self._cache.move_to_end(slot)
            return hit[1]
        value = self._compute(config, key)
        self._cache[slot] = (config, value)
        if len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return value
