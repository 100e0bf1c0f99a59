"""`vcl-injector certs --secret --webhook` (the install Job) against the Kubernetes API
double: creates the TLS Secret and sets every webhook's caBundle; a second run keeps a
certificate that is still good; one expiring within 30 days, or lacking a service name,
is replaced; a webhook configuration that never appears is a clear error."""

from __future__ import annotations

import base64
import datetime
from collections.abc import Iterator
from typing import Any

import pytest
from kube_double import KubeDouble

from injector.kube.webhook_certs import CertApplyError, CertTarget, apply_certs
from injector.webhook import certs

NAMES = certs.service_names("vcl-injector", "vcl-system")


@pytest.fixture
def kube() -> Iterator[KubeDouble]:
    with KubeDouble() as double:
        double.webhook_configs["vcl-injector"] = {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": "vcl-injector"},
            "webhooks": [
                {
                    "name": "namespace.vcl.io",
                    "clientConfig": {
                        "service": {"name": "vcl-injector", "namespace": "vcl-system"}
                    },
                    "admissionReviewVersions": ["v1"],
                    "sideEffects": "None",
                },
                {
                    "name": "pod.vcl.io",
                    "clientConfig": {
                        "service": {"name": "vcl-injector", "namespace": "vcl-system"}
                    },
                    "admissionReviewVersions": ["v1"],
                    "sideEffects": "None",
                },
            ],
        }
        yield double


def generator(names: list[str], days: int = 365) -> tuple[Any, list[int]]:
    calls: list[int] = []

    def generate() -> tuple[bytes, bytes, bytes]:
        calls.append(1)
        b = certs.generate(names, days=days)
        return b.ca_pem, b.cert_pem, b.key_pem

    return generate, calls


TARGET = CertTarget("vcl-system", "vcl-injector-tls", "vcl-injector", NAMES, wait_seconds=0.5)


def test_creates_secret_and_sets_every_ca_bundle(kube: KubeDouble) -> None:
    generate, calls = generator(NAMES)
    ca = apply_certs(kube.api_client(), TARGET, generate)
    secret = kube.secrets[("vcl-system", "vcl-injector-tls")]
    assert secret["type"] == "kubernetes.io/tls"
    assert base64.b64decode(secret["data"]["ca.crt"]) == ca
    bundles = [
        w["clientConfig"]["caBundle"] for w in kube.webhook_configs["vcl-injector"]["webhooks"]
    ]
    assert bundles == [base64.b64encode(ca).decode()] * 2
    assert calls == [1]


def test_second_run_keeps_a_good_certificate(kube: KubeDouble) -> None:
    generate, calls = generator(NAMES)
    first = apply_certs(kube.api_client(), TARGET, generate)
    second = apply_certs(kube.api_client(), TARGET, generate)
    assert first == second and calls == [1]


@pytest.mark.parametrize(("names", "days"), [(NAMES, 10), (["only-this-name"], 365)])
def test_expiring_or_wrong_certificate_is_replaced(
    kube: KubeDouble, names: list[str], days: int
) -> None:
    old_gen, _ = generator(names, days)
    old = apply_certs(
        kube.api_client(),
        CertTarget("vcl-system", "vcl-injector-tls", "vcl-injector", names, 0.5),
        old_gen,
    )
    generate, calls = generator(NAMES)
    new = apply_certs(kube.api_client(), TARGET, generate, now=datetime.datetime.now(datetime.UTC))
    assert calls == [1] and new != old


def test_missing_webhook_configuration_is_a_clear_error(kube: KubeDouble) -> None:
    del kube.webhook_configs["vcl-injector"]
    generate, _ = generator(NAMES)
    with pytest.raises(CertApplyError, match="MutatingWebhookConfiguration vcl-injector: 404"):
        apply_certs(kube.api_client(), TARGET, generate)
