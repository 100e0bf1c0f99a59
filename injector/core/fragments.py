"""Rendered pod fragments, memoised per (config, settings): rendering is the costly part."""

from __future__ import annotations

from collections.abc import Hashable

from injector.core.annotations import PodSettings
from injector.core.config import InjectorConfig
from injector.core.memo import ConfigMemo
from injector.core.render import PodFragments, render_fragments


def _render(config: InjectorConfig, settings: Hashable) -> PodFragments:
    assert isinstance(settings, PodSettings)
    return render_fragments(config, settings)


_FRAGMENTS: ConfigMemo[PodFragments] = ConfigMemo(_render)


def fragments_for(config: InjectorConfig, settings: PodSettings) -> PodFragments:
    return _FRAGMENTS.get(config, settings)
