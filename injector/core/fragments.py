"""Rendered pod fragments, memoised per (config, settings): rendering is the costly part."""

from __future__ import annotations

from collections import OrderedDict

from injector.core.annotations import PodSettings
from injector.core.config import InjectorConfig
from injector.core.render import PodFragments, render_fragments

# A pure memo: the same inputs always give the same fragments. Keyed by the config's
# identity (the webhook holds one config object until a reload), holding the config so
# an id is never reused while cached; bounded so reloads cannot grow it.
_CACHE: OrderedDict[tuple[int, PodSettings], tuple[InjectorConfig, PodFragments]] = OrderedDict()
_CACHE_SIZE = 64


def fragments_for(config: InjectorConfig, settings: PodSettings) -> PodFragments:
    key = (id(config), settings)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is config:
        _CACHE.move_to_end(key)
        return hit[1]
    frags = render_fragments(config, settings)
    _CACHE[key] = (config, frags)
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return frags
