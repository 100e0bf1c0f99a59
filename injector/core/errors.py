"""Errors of the injection core."""

from __future__ import annotations


class InjectionError(ValueError):
    """The pod cannot be injected as asked; the message names the field and the fix."""
