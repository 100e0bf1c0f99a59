"""Per-pod settings from `vcl.io/*` annotations: one table of validators, every error at once."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any

from injector.core import constants as c
from injector.core.config import MAX_QUEUE, MIN_QUEUE, InjectorConfig, check_queue_size
from injector.core.memo import ConfigMemo

# VCL keeps fifo sizes in u32 and allocates them from the app's segment: below 4 KiB a
# session cannot hold one TCP segment, above 1 GiB it cannot fit a default segment.
MIN_FIFO = 4 * 1024
MAX_FIFO = 1024**3

_QUANTITY = re.compile(r"^([0-9]+)(Ki|Mi|Gi|k|M|G)?$")
_MULTIPLIERS = {
    None: 1,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "k": 1000,
    "M": 1000**2,
    "G": 1000**3,
}
# RFC 1123 label: what Kubernetes accepts as a container name.
_CONTAINER_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class AnnotationError:
    """One bad annotation: which, the value seen, and what is accepted."""

    key: str
    value: str
    accepted: str

    def __str__(self) -> str:
        return f"annotation {self.key}={self.value!r} is invalid: {self.accepted}"


class InvalidAnnotations(ValueError):
    """One or more `vcl.io/*` annotations have values we cannot use."""

    def __init__(self, errors: list[AnnotationError]) -> None:
        self.errors = tuple(errors)
        super().__init__("; ".join(str(e) for e in errors))


@dataclass(frozen=True)
class PodSettings:
    """The resolved per-pod settings: annotation where present, config default otherwise."""

    dataplane: str
    containers: tuple[str, ...] | None
    rx_fifo_size: int
    tx_fifo_size: int
    eventfd: bool
    workers: bool
    event_queue_size: int
    kernel_cidrs: tuple[str, ...]
    kernel_ports: tuple[int, ...]
    kernel_listen: str
    app_scope: str

    def __hash__(self) -> int:
        # Settings key the fragments memo once per pod: hash the fields once per object.
        return self._hash

    @cached_property
    def _hash(self) -> int:
        return hash(tuple(getattr(self, f.name) for f in fields(self)))

    def as_annotation(self) -> dict[str, Any]:
        """The settings as recorded in vcl.io/status for the agent (JSON-friendly)."""
        return {
            "rxFifoSize": self.rx_fifo_size,
            "txFifoSize": self.tx_fifo_size,
            "eventfd": self.eventfd,
            "workers": self.workers,
            "eventQueueSize": self.event_queue_size,
            "kernelCidrs": list(self.kernel_cidrs),
            "kernelPorts": list(self.kernel_ports),
            "kernelListen": self.kernel_listen,
            "appScope": self.app_scope,
        }


def parse_bool(value: str) -> bool:
    if value == "true":
        return True
    if value == "false":
        return False
    raise ValueError('accepted values are "true" or "false"')


def _choice(*options: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in options:
            raise ValueError("accepted values are " + ", ".join(f'"{o}"' for o in options))
        return value

    return parse


def parse_quantity(value: str) -> int:
    """A byte size in Kubernetes quantity style (`65536`, `64Ki`, `4Mi`, `1G`)."""
    match = _QUANTITY.match(value.strip())
    if not match:
        raise ValueError("expected a size like 65536, 64Ki, 4Mi or 1Gi")
    size = int(match.group(1)) * _MULTIPLIERS[match.group(2)]
    if not MIN_FIFO <= size <= MAX_FIFO:
        raise ValueError(f"size must be between 4Ki ({MIN_FIFO}) and 1Gi ({MAX_FIFO}) bytes")
    return size


def parse_queue_size(value: str) -> int:
    """VCL's event-queue-size: a power of two, 2048 (VPP's default) to 1048576."""
    if not value.strip().isdigit():
        raise ValueError(f"expected a power of two from {MIN_QUEUE} to {MAX_QUEUE}, like 8192")
    return check_queue_size(int(value.strip()))


def _items(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def parse_cidrs(value: str) -> tuple[str, ...]:
    """Comma-separated IPv4/IPv6 CIDRs (a bare address is a /32 or /128)."""
    out = []
    for item in _items(value):
        try:
            out.append(str(ipaddress.ip_network(item, strict=True)))
        except ValueError as exc:
            raise ValueError(f"{item!r} is not a CIDR like 10.0.0.0/8 or fd00::/8 ({exc})") from exc
    return tuple(out)


def parse_ports(value: str) -> tuple[int, ...]:
    """Comma-separated TCP/UDP port numbers, 1-65535."""
    out = []
    for item in _items(value):
        if not item.isdigit() or not 1 <= int(item) <= 65535:
            raise ValueError(f"{item!r} is not a port number from 1 to 65535")
        out.append(int(item))
    return tuple(sorted(set(out)))


def parse_containers(value: str) -> tuple[str, ...]:
    names = _items(value)
    if not names:
        raise ValueError("expected a comma-separated list of container names")
    for name in names:
        if not _CONTAINER_NAME.match(name):
            raise ValueError(f"{name!r} is not a valid container name")
    return tuple(dict.fromkeys(names))


# key -> (field of PodSettings, parser). The one table every annotation is checked against.
_PARSERS: dict[str, tuple[str, Callable[[str], Any]]] = {
    c.ANNOTATION_DATAPLANE: ("dataplane", _choice("node", "pod")),
    c.ANNOTATION_CONTAINERS: ("containers", parse_containers),
    c.ANNOTATION_RX_FIFO: ("rx_fifo_size", parse_quantity),
    c.ANNOTATION_TX_FIFO: ("tx_fifo_size", parse_quantity),
    c.ANNOTATION_EVENTFD: ("eventfd", parse_bool),
    c.ANNOTATION_WORKERS: ("workers", parse_bool),
    c.ANNOTATION_EVENT_QUEUE: ("event_queue_size", parse_queue_size),
    c.ANNOTATION_KERNEL_CIDRS: ("kernel_cidrs", parse_cidrs),
    c.ANNOTATION_KERNEL_PORTS: ("kernel_ports", parse_ports),
    c.ANNOTATION_KERNEL_LISTEN: ("kernel_listen", _choice("vcl", "both")),
    c.ANNOTATION_APP_SCOPE: ("app_scope", _choice("local", "global", "both")),
}
# Annotations under vcl.io/ that are ours but not settings.
_OTHER_KNOWN = {
    c.ANNOTATION_INJECT,
    c.ANNOTATION_VPP_INGRESS,
    c.ANNOTATION_STATUS,
    c.ANNOTATION_REGISTERED,
}
KNOWN_ANNOTATIONS = frozenset((*_PARSERS, *_OTHER_KNOWN))
# Written by us (any string passes): not part of the settings memo's key.
_RECORDS = frozenset((c.ANNOTATION_STATUS, c.ANNOTATION_REGISTERED))


def _defaults(config: InjectorConfig, _: object = None) -> dict[str, Any]:
    d = config.defaults
    return {
        "dataplane": config.default_dataplane,
        "containers": None,
        "rx_fifo_size": parse_quantity(d.rx_fifo_size),
        "tx_fifo_size": parse_quantity(d.tx_fifo_size),
        "eventfd": d.eventfd,
        "workers": d.workers,
        "event_queue_size": d.event_queue_size,
        "kernel_cidrs": parse_cidrs(",".join(d.kernel_cidrs)),
        "kernel_ports": tuple(sorted(set(d.kernel_ports))),
        "kernel_listen": d.kernel_listen,
        "app_scope": d.app_scope,
    }


_DEFAULTS: ConfigMemo[dict[str, Any]] = ConfigMemo(_defaults)


def annotation_errors(annotations: Mapping[str, Any]) -> list[AnnotationError]:
    """Every bad `vcl.io/*` annotation (unknown key, non-string or unusable value)."""
    return _parse(annotations, {})[1]


def parse_settings(annotations: Mapping[str, Any], config: InjectorConfig) -> PodSettings:
    """Resolve a pod's settings; raises InvalidAnnotations naming every bad value.

    Pods with the same vcl.io/* annotations get the same (immutable) object: most pods
    have none or the same few, and the object then keys the fragments memo cheaply.
    """
    ours = tuple(
        sorted(
            (k, v)
            for k, v in annotations.items()
            if isinstance(k, str)
            and k[:7] == "vcl.io/"
            and not (k in _RECORDS and isinstance(v, str))  # valid, and not settings
        )
    )
    if all(isinstance(v, str) for _, v in ours):
        return _SETTINGS.get(config, ours)
    return _settings(config, ours)


def _settings(config: InjectorConfig, annotations: Hashable) -> PodSettings:
    assert isinstance(annotations, tuple)
    values, errors = _parse(dict(annotations), dict(_DEFAULTS.get(config)))
    if errors:
        raise InvalidAnnotations(errors)
    return PodSettings(**values)


_SETTINGS: ConfigMemo[PodSettings] = ConfigMemo(_settings, size=256)


def _parse(
    annotations: Mapping[str, Any], values: dict[str, Any]
) -> tuple[dict[str, Any], list[AnnotationError]]:
    errors: list[AnnotationError] = []
    for key in sorted(k for k in annotations if isinstance(k, str) and k.startswith("vcl.io/")):
        raw = annotations[key]
        if key not in KNOWN_ANNOTATIONS:
            known = ", ".join([*sorted(_PARSERS), c.ANNOTATION_INJECT, c.ANNOTATION_VPP_INGRESS])
            errors.append(AnnotationError(key, str(raw), f"unknown annotation (known: {known})"))
            continue
        if not isinstance(raw, str):
            errors.append(AnnotationError(key, str(raw), "annotation values must be strings"))
            continue
        if key in (c.ANNOTATION_INJECT, c.ANNOTATION_VPP_INGRESS):
            try:
                parse_bool(raw)
            except ValueError as exc:
                errors.append(AnnotationError(key, raw, str(exc)))
            continue
        if key not in _PARSERS:
            continue
        field, parser = _PARSERS[key]
        try:
            values[field] = parser(raw)
        except ValueError as exc:
            errors.append(AnnotationError(key, raw, str(exc)))
    return values, errors
