"""The certificate Job's work: keep the webhook's TLS Secret valid and the
MutatingWebhookConfiguration's caBundle pointing at its CA. Idempotent: a Secret whose
certificate is valid for the service names for 30 more days is kept as it is."""

from __future__ import annotations

import base64
import datetime
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from kubernetes import client
from kubernetes.client.exceptions import ApiException

log = logging.getLogger("vcl_injector")
RENEW_BEFORE = datetime.timedelta(days=30)


class CertApplyError(RuntimeError):
    """The Secret or the webhook configuration could not be written; says which and why."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def still_good(secret: Any, names: list[str], now: datetime.datetime) -> bytes | None:
    """The Secret's CA (PEM) when its certificate can be kept, else None."""
    data = getattr(secret, "data", None) or {}
    try:
        cert = x509.load_pem_x509_certificate(base64.b64decode(data["tls.crt"]))
        ca = base64.b64decode(data["ca.crt"])
        base64.b64decode(data["tls.key"])
    except (KeyError, ValueError):
        return None
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        have = set(sans.value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        return None
    if not set(names) <= have or cert.not_valid_after_utc - now < RENEW_BEFORE:
        return None
    return ca


@dataclass(frozen=True)
class CertTarget:
    namespace: str
    secret_name: str
    webhook_name: str
    names: list[str]  # DNS names the serving certificate must hold
    wait_seconds: float = 120.0  # for the webhook configuration to appear


def apply_certs(
    api: Any,
    target: CertTarget,
    generate: Callable[[], tuple[bytes, bytes, bytes]],
    *,
    now: datetime.datetime | None = None,
) -> bytes:
    """Ensure the Secret and the caBundle; returns the CA (PEM). `generate` gives
    (ca, cert, key) PEMs when a new certificate is needed."""
    namespace, secret_name = target.namespace, target.secret_name
    where = f"Secret {namespace}/{secret_name}"
    core = client.CoreV1Api(api)
    admission = client.AdmissionregistrationV1Api(api)
    now = now or datetime.datetime.now(datetime.UTC)
    try:
        existing = core.read_namespaced_secret(secret_name, namespace)
    except ApiException as exc:
        if exc.status != 404:
            raise CertApplyError(f"read {where}: {exc.status} {exc.reason}") from exc
        existing = None
    ca = still_good(existing, target.names, now) if existing is not None else None
    if ca is None:
        ca, cert, key = generate()
        body = client.V1Secret(
            metadata=client.V1ObjectMeta(name=secret_name, namespace=namespace),
            type="kubernetes.io/tls",
            data={"ca.crt": _b64(ca), "tls.crt": _b64(cert), "tls.key": _b64(key)},
        )
        try:
            if existing is None:
                core.create_namespaced_secret(namespace, body)
            else:
                core.replace_namespaced_secret(secret_name, namespace, body)
        except ApiException as exc:
            raise CertApplyError(f"write {where}: {exc.status} {exc.reason}") from exc
        log.info("webhook certificate written to Secret %s/%s", namespace, secret_name)
    _patch_ca_bundle(admission, target.webhook_name, ca, target.wait_seconds)
    return ca


def _patch_ca_bundle(admission: Any, name: str, ca: bytes, wait_seconds: float) -> None:
    """Every webhook entry gets the CA. The configuration may be applied after this Job
    starts (kubectl apply -k creates objects in one pass, in no guaranteed order): wait."""
    deadline = time.monotonic() + wait_seconds
    delay = 0.5
    while True:
        try:
            config = admission.read_mutating_webhook_configuration(name)
            break
        except ApiException as exc:
            if exc.status != 404 or time.monotonic() > deadline:
                raise CertApplyError(
                    f"read MutatingWebhookConfiguration {name}: {exc.status} {exc.reason}"
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
    bundle = _b64(ca)
    ops = [
        {"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": bundle}
        for i in range(len(config.webhooks or []))
    ]
    if not ops:
        raise CertApplyError(f"MutatingWebhookConfiguration {name} has no webhooks")
    try:
        admission.patch_mutating_webhook_configuration(name, ops)
    except ApiException as exc:
        raise CertApplyError(
            f"patch caBundle of MutatingWebhookConfiguration {name}: {exc.status} {exc.reason}"
        ) from exc
