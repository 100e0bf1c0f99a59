"""Which containers of a pod go on VCL, and why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from injector.core import constants as c
from injector.core.annotations import PodSettings
from injector.core.config import InjectorConfig
from injector.core.errors import InjectionError


@dataclass(frozen=True)
class Selection:
    names: tuple[str, ...]
    reason: str


def is_native_sidecar(container: dict[str, Any]) -> bool:
    """An init container with restartPolicy Always runs beside the app (Kubernetes >= 1.29)."""
    return container.get("restartPolicy") == "Always"


def select_containers(
    spec: dict[str, Any], settings: PodSettings, config: InjectorConfig
) -> Selection:
    containers = [x["name"] for x in spec.get("containers") or []]
    init = spec.get("initContainers") or []
    sidecars = [x["name"] for x in init if is_native_sidecar(x)]
    if settings.containers is not None:
        known = set(containers) | {x["name"] for x in init}
        missing = [n for n in settings.containers if n not in known or n.startswith("vcl-")]
        if missing:
            raise InjectionError(
                f"annotation {c.ANNOTATION_CONTAINERS} names {', '.join(missing)}, which "
                f"{'is' if len(missing) == 1 else 'are'} not a container of the pod "
                f"(containers: {', '.join(containers + [x['name'] for x in init])})"
            )
        return Selection(settings.containers, f"chosen by annotation {c.ANNOTATION_CONTAINERS}")
    proxies = [n for n in (*containers, *sidecars) if n in config.sidecar_proxies]
    if proxies:
        return Selection(
            tuple(proxies),
            f"mesh proxy {', '.join(proxies)} found: only the proxy is put on VCL; the app "
            "reaches it over kernel loopback, so the mesh still intercepts the app's traffic",
        )
    return Selection(
        tuple(containers),
        "no mesh proxy in the pod: every app container is put on VCL",
    )
