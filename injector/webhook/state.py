"""What the webhook process holds: the config in force, readiness, metrics, the logger."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram

from injector.core import InjectorConfig


class Metrics:
    """Prometheus metrics, in a registry of their own (one per app: tests stay isolated)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "vcl_injector_requests",
            "Admission requests by outcome (injected|skipped|denied|allowed|error|bad_request)",
            ["outcome"],
            registry=self.registry,
        )
        self.decisions = Counter(
            "vcl_injector_decisions",
            "Pods injected or skipped, by decision code",
            ["decision", "reason"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "vcl_injector_admission_duration_seconds",
            "Time to answer one AdmissionReview",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )
        self.config_reloads = Counter(
            "vcl_injector_config_reloads",
            "Config file reloads by result (success, error)",
            ["result"],
            registry=self.registry,
        )
        self._children: dict[tuple[str, ...], Any] = {}
        self.cert_reloads = Counter(
            "vcl_injector_cert_reloads",
            "TLS certificate reloads by result (success, error)",
            ["result"],
            registry=self.registry,
        )

    def count_request(self, outcome: str) -> None:
        self._child(self.requests, outcome).inc()

    def count_decision(self, decision: str, reason: str) -> None:
        self._child(self.decisions, decision, reason).inc()

    def _child(self, metric: Counter, *labels: str) -> Any:
        # labels() takes a lock and builds a key each time; the label sets are few.
        key = (metric._name, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child


@dataclass
class WebhookState:
    """Mutable on purpose: reloads swap `config` (an immutable object) in one assignment."""

    config: InjectorConfig = field(default_factory=InjectorConfig)
    config_loaded: bool = True
    certs_loaded: bool = True
    metrics: Metrics = field(default_factory=Metrics)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("vcl_injector"))

    @property
    def ready(self) -> bool:
        return self.config_loaded and self.certs_loaded


class JsonFormatter(logging.Formatter):
    """One JSON object per line; structured fields come from `extra={"fields": {...}}`."""

    _second = -1
    _time = ""

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:  # one strftime a second, not one a line
            self._second, self._time = second, self.formatTime(record, "%Y-%m-%dT%H:%M:%S")
        line = {
            "time": self._time,
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        return text


def configure_logging(log_format: str, level: int = logging.INFO) -> None:
    # Neither format shows the caller, thread or process: don't collect them for every
    # record (the logging HOWTO's "Optimization"; a quarter of an admission's log cost).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter()
        if log_format == "json"
        else TextFormatter("%(asctime)s %(levelname)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
