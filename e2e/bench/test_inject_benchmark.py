"""Benchmark (not a test of speed): µs per injected 3-container pod, and per admission patch.

Run: python3 -m pytest e2e/bench/test_inject_benchmark.py --benchmark-enable -p no:cacheprovider
Target (issue 3): <= 150 µs per injected pod on the 2-core dev machine.
"""

from __future__ import annotations

from typing import Any

import pytest

from injector.core import InjectorConfig, inject, patch

CONFIG = InjectorConfig()


def three_container_pod() -> dict[str, Any]:
    def container(name: str) -> dict[str, Any]:
        return {
            "name": name,
            "image": f"example/{name}:1",
            "env": [{"name": "MODE", "value": "x"}, {"name": "LD_PRELOAD", "value": "/l.so"}],
            "ports": [{"containerPort": 8080}],
            "resources": {"requests": {"cpu": "100m"}},
            "volumeMounts": [{"name": "sa", "mountPath": "/var/run/secrets"}],
        }

    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "web-", "namespace": "demo", "labels": {"app": "web"}},
        "spec": {
            "containers": [container("web"), container("worker"), container("cache")],
            "volumes": [{"name": "sa", "projected": {"sources": []}}],
        },
    }


def test_inject_three_container_pod(benchmark: Any) -> None:
    pod = three_container_pod()
    inject(pod, CONFIG)  # warm the fragment memo, as a running webhook has
    result = benchmark(inject, pod, CONFIG)
    assert result["spec"]["initContainers"][0]["name"] == "vcl-init"
    if benchmark.stats:
        print(f"\ninject: {benchmark.stats.stats.mean * 1e6:.1f} µs per 3-container pod (mean)")


def test_inject_and_patch_three_container_pod(benchmark: Any) -> None:
    pod = three_container_pod()

    def admit() -> list[dict[str, Any]]:
        return patch(pod, inject(pod, CONFIG))

    ops = benchmark(admit)
    assert ops
    if benchmark.stats:
        print(f"\ninject+patch: {benchmark.stats.stats.mean * 1e6:.1f} µs per pod (mean)")


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "--benchmark-enable", "-s"]))
