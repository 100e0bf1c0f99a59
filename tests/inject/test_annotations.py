"""Per-pod annotations: accepted forms, defaults from config, and every bad value named."""

from __future__ import annotations

import pytest

from injector.core import InjectorConfig, InvalidAnnotations, parse_settings
from injector.core.config import parse_config

CONFIG = InjectorConfig()


@pytest.mark.parametrize(
    ("key", "value", "field", "expected"),
    [
        ("vcl.io/rx-fifo-size", "65536", "rx_fifo_size", 65536),
        ("vcl.io/event-queue-size", "32768", "event_queue_size", 32768),
        ("vcl.io/rx-fifo-size", "64Ki", "rx_fifo_size", 65536),
        ("vcl.io/tx-fifo-size", "4Mi", "tx_fifo_size", 4 * 1024**2),
        ("vcl.io/tx-fifo-size", "1Gi", "tx_fifo_size", 1024**3),
        ("vcl.io/tx-fifo-size", "100k", "tx_fifo_size", 100_000),
        ("vcl.io/eventfd", "false", "eventfd", False),
        ("vcl.io/workers", "false", "workers", False),
        ("vcl.io/kernel-cidrs", "10.0.0.0/8, fd00::/8", "kernel_cidrs", ("10.0.0.0/8", "fd00::/8")),
        ("vcl.io/kernel-cidrs", "192.0.2.7", "kernel_cidrs", ("192.0.2.7/32",)),
        ("vcl.io/kernel-cidrs", "", "kernel_cidrs", ()),
        ("vcl.io/kernel-ports", "9090,53, 80", "kernel_ports", (53, 80, 9090)),
        ("vcl.io/kernel-listen", "vcl", "kernel_listen", "vcl"),
        ("vcl.io/app-scope", "local", "app_scope", "local"),
        ("vcl.io/dataplane", "pod", "dataplane", "pod"),
        ("vcl.io/containers", "a, b,a", "containers", ("a", "b")),
    ],
)
def test_accepted_values(key: str, value: str, field: str, expected: object) -> None:
    assert getattr(parse_settings({key: value}, CONFIG), field) == expected


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("vcl.io/rx-fifo-size", "4MB", "64Ki, 4Mi"),
        ("vcl.io/event-queue-size", "10000", "power of two from 2048"),
        ("vcl.io/event-queue-size", "1024", "power of two from 2048"),
        ("vcl.io/event-queue-size", "8Ki", "like 8192"),
        ("vcl.io/rx-fifo-size", "1", "between 4Ki"),
        ("vcl.io/rx-fifo-size", "2Gi", "between 4Ki"),
        ("vcl.io/rx-fifo-size", "-4Ki", "expected a size"),
        ("vcl.io/eventfd", "yes", '"true" or "false"'),
        ("vcl.io/workers", "1", '"true" or "false"'),
        ("vcl.io/kernel-cidrs", "10.0.0.1/8", "host bits"),
        ("vcl.io/kernel-cidrs", "10.0.0.0/33", "not a CIDR"),
        ("vcl.io/kernel-ports", "0", "1 to 65535"),
        ("vcl.io/kernel-ports", "70000", "1 to 65535"),
        ("vcl.io/kernel-ports", "http", "1 to 65535"),
        ("vcl.io/kernel-listen", "kernel", '"vcl", "both"'),
        ("vcl.io/app-scope", "wide", '"local", "global", "both"'),
        ("vcl.io/dataplane", "host", '"node", "pod"'),
        ("vcl.io/containers", "App", "not a valid container name"),
        ("vcl.io/containers", " , ", "comma-separated"),
        ("vcl.io/inject", "yes", '"true" or "false"'),
        ("vcl.io/evenfd", "true", "unknown annotation"),
    ],
)
def test_rejected_values_name_annotation_value_and_accepted(
    key: str, value: str, says: str
) -> None:
    with pytest.raises(InvalidAnnotations) as info:
        parse_settings({key: value}, CONFIG)
    message = str(info.value)
    assert key in message and repr(value) in message and says in message


def test_every_bad_value_is_reported_at_once() -> None:
    bad = {"vcl.io/eventfd": "on", "vcl.io/app-scope": "x", "vcl.io/kernel-ports": "0"}
    with pytest.raises(InvalidAnnotations) as info:
        parse_settings(bad, CONFIG)
    assert sorted(e.key for e in info.value.errors) == sorted(bad)


def test_non_string_value_is_an_error_not_a_crash() -> None:
    with pytest.raises(InvalidAnnotations, match="must be strings"):
        parse_settings({"vcl.io/eventfd": True}, CONFIG)


def test_defaults_come_from_config() -> None:
    config = parse_config(
        "defaults: {rxFifoSize: 1Mi, eventfd: false, kernelPorts: [53, 8080], appScope: local}"
    )
    settings = parse_settings({}, config)
    assert settings.rx_fifo_size == 1024**2
    assert settings.eventfd is False
    assert settings.kernel_ports == (53, 8080)
    assert settings.app_scope == "local"
    assert settings.dataplane == "node"


def test_other_annotations_are_ignored() -> None:
    settings = parse_settings({"example.com/x": "y", "sidecar.istio.io/status": "{}"}, CONFIG)
    assert settings == parse_settings({}, CONFIG)


def test_settings_are_shared_by_pods_with_the_same_annotations_and_never_go_stale() -> None:
    # parse_settings is memoised on the vcl.io/* annotations (the fragments memo is keyed
    # by the result): the records we write are not settings; a reload is a new config.
    base = {"vcl.io/rx-fifo-size": "1Mi", "app": "web"}
    first = parse_settings(base, CONFIG)
    assert parse_settings({**base, "vcl.io/status": "{}", "other": "x"}, CONFIG) is first
    assert (
        parse_settings({**base, "vcl.io/rx-fifo-size": "2Mi"}, CONFIG).rx_fifo_size == 2 * 1024**2
    )
    reloaded = parse_config("defaults:\n  rxFifoSize: 8Mi\n")
    assert parse_settings({}, reloaded).rx_fifo_size == 8 * 1024**2
    assert parse_settings({}, CONFIG).rx_fifo_size != 8 * 1024**2
    for _ in range(2):  # an error is raised every time, never remembered as a result
        with pytest.raises(InvalidAnnotations, match=r"vcl\.io/eventfd"):
            parse_settings({"vcl.io/eventfd": "yes"}, CONFIG)
    with pytest.raises(InvalidAnnotations, match="must be strings"):
        parse_settings({"vcl.io/status": 3}, CONFIG)


def test_vpp_ingress_opt_out_is_checked_but_is_no_setting() -> None:
    """vcl.io/vpp-ingress is the agent's (mode local's endpoint table): a pod may set it,
    a bad value is denied like any other, and the injected settings do not change."""
    assert parse_settings({"vcl.io/vpp-ingress": "false"}, CONFIG) == parse_settings({}, CONFIG)
    with pytest.raises(InvalidAnnotations) as info:
        parse_settings({"vcl.io/vpp-ingress": "nope"}, CONFIG)
    assert [e.key for e in info.value.errors] == ["vcl.io/vpp-ingress"]
