"""The pure injection core: decide whether a pod is injected, inject it, diff it.

Nothing here does I/O (templates are read once, lazily, from the package), keeps
clocks or mutates its inputs; the webhook, the agent and the CLIs are thin adapters
around these functions.
"""

from injector.core.annotations import InvalidAnnotations, PodSettings, parse_settings
from injector.core.config import InjectorConfig, load_config
from injector.core.decision import Decision, decide
from injector.core.mutation import InjectionError, inject, injection_patch, patch

__all__ = [
    "Decision",
    "InjectionError",
    "InjectorConfig",
    "InvalidAnnotations",
    "PodSettings",
    "decide",
    "inject",
    "injection_patch",
    "load_config",
    "parse_settings",
    "patch",
]
