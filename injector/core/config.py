"""The injector's configuration: cluster-wide defaults and image names (YAML, validated)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

Dataplane = Literal["node", "pod"]
AppScope = Literal["local", "global", "both"]
KernelListen = Literal["vcl", "both"]


_OWN_PREFIX = "vcl.io/"
# Kubernetes' qualified name: an optional DNS-subdomain prefix and '/', then a name.
_QUALIFIED = re.compile(
    r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
)


MIN_QUEUE, MAX_QUEUE = 2048, 1 << 20


def check_queue_size(size: int) -> int:
    """VCL's event-queue-size: a power of two from VPP's default (2048) to 2^20."""
    if not MIN_QUEUE <= size <= MAX_QUEUE or size & (size - 1):
        raise ValueError(f"must be a power of two from {MIN_QUEUE} to {MAX_QUEUE}")
    return size


class ConfigError(ValueError):
    """The configuration file is unreadable or invalid; the message names the field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Resources(_Model):
    """Requests/limits of a container we add (Kubernetes quantity strings)."""

    requests: dict[str, str] = Field(default_factory=lambda: {"cpu": "10m", "memory": "16Mi"})
    limits: dict[str, str] = Field(default_factory=lambda: {"cpu": "100m", "memory": "32Mi"})


class VclDefaults(_Model):
    """Per-pod VCL settings used where a pod has no annotation for them."""

    @field_validator("event_queue_size")
    @classmethod
    def _queue(cls, value: int) -> int:
        return check_queue_size(value)

    # VCL's default fifo (64 KiB) caps a session's throughput; 4 MiB suits a proxy.
    rx_fifo_size: str = Field("4Mi", alias="rxFifoSize")
    tx_fifo_size: str = Field("4Mi", alias="txFifoSize")
    eventfd: bool = True
    # True (multi-thread-workers): each app thread is its own VCL app worker, with its own
    # message queue. The only setting under which several epoll threads in one process work
    # (wrk -t2, haproxy threads, Envoy's workers): with one shared worker VCL 26.06 hands a
    # session's events to whichever thread's epoll reads the queue (wrk crashed). VCL cannot
    # move a listening or connected session between threads: the interposer gives each
    # thread that uses a listener a VCL listener of its own, and reports a connected
    # session used by another thread (thread-handoff; vcl-status shows it). False suits a
    # thread pool fed by one accepting thread, with at most one epoll thread.
    workers: bool = True
    # 8192: 512 pending connects/accepts per app worker (~0.3 MiB of its segment).
    event_queue_size: int = Field(8192, alias="eventQueueSize")
    # Cluster DNS may not be reachable through VPP; the interposer keeps port 53 on the kernel.
    kernel_cidrs: tuple[str, ...] = Field((), alias="kernelCidrs")
    kernel_ports: tuple[int, ...] = Field((53,), alias="kernelPorts")
    kernel_listen: KernelListen = Field("both", alias="kernelListen")
    app_scope: AppScope = Field("both", alias="appScope")


class RuntimeConfig(_Model):
    """Where the VCL runtime comes from and how it is loaded in a container."""

    # Image with stock VPP's VCL/LDP libraries and our interposer (manifests/ builds it).
    image: str = "ghcr.io/vcl-injector/vcl-runtime:26.06"
    # VPP/VCL release of the libraries in the image; the agent compares it with its VPP.
    version: str = "26.06"
    # Directory in the runtime image holding the libraries the init container copies.
    library_dir: str = Field("/usr/lib/vcl-runtime", alias="libraryDir")
    interposer: str = "libvcl_dualstack.so"
    ldp: str = Field("libvcl_ldpreload.so", alias="ldp")
    ldp_sid_bit: int = Field(20, alias="ldpSidBit", ge=6, le=30)
    # lazy: preload only the interposer, which loads LDP at the first socket that needs
    # VPP (a down VPP then leaves the app on the kernel instead of LDP's exit at start);
    # preload: both libraries in LD_PRELOAD, the interposer first.
    ldp_loading: Literal["lazy", "preload"] = Field("lazy", alias="ldpLoading")
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        "IfNotPresent", alias="pullPolicy"
    )


class PodDataplaneConfig(_Model):
    """The VPP sidecar of dataplane `pod`."""

    image: str = "ghcr.io/vcl-injector/vcl-runtime:26.06"
    main_heap_size: str = Field("256M", alias="mainHeapSize")
    # Interrupt-ish main loop: an idle per-pod VPP must not burn a core.
    poll_sleep_usec: int = Field(100, alias="pollSleepUsec", ge=0)
    resources: Resources = Field(
        default_factory=lambda: Resources(
            requests={"cpu": "100m", "memory": "512Mi"},
            limits={"cpu": "1", "memory": "512Mi"},
        )
    )


class InjectorConfig(_Model):
    """Everything the injector needs besides the pod; `InjectorConfig()` is the default."""

    # The add-on's own namespace: never injected.
    namespace: str = "vcl-system"
    excluded_namespaces: tuple[str, ...] = Field(
        ("kube-system", "kube-public", "kube-node-lease"), alias="excludedNamespaces"
    )
    default_dataplane: Dataplane = Field("node", alias="defaultDataplane")
    # Mesh proxies: where one is in the pod, only it is put on VCL by default.
    sidecar_proxies: tuple[str, ...] = Field(("istio-proxy",), alias="sidecarProxies")
    # Host directory the agent writes per-pod directories under (pods/<uid>/).
    host_root: str = Field("/var/run/vcl", alias="hostRoot")
    # How long the init container waits for the agent before failing the pod start.
    registration_timeout_seconds: int = Field(120, alias="registrationTimeoutSeconds", ge=1)
    node_affinity: bool = Field(True, alias="nodeAffinity")
    readiness_gate: bool = Field(True, alias="readinessGate")
    runtime: RuntimeConfig = Field(default_factory=lambda: RuntimeConfig())
    init_resources: Resources = Field(default_factory=lambda: Resources(), alias="initResources")
    pod_dataplane: PodDataplaneConfig = Field(
        default_factory=lambda: PodDataplaneConfig(), alias="podDataplane"
    )
    defaults: VclDefaults = Field(default_factory=lambda: VclDefaults())
    # Added to every pod injected for the node's VPP, unless the pod sets the key itself
    # (and removed again on re-injection). calico-vpp installs set
    # cni.projectcalico.org/vppVcl: enable, so that Calico/VPP routes the pod's traffic
    # through the pod's VRF to VPP's session layer (and the rest on to the pod).
    pod_annotations: dict[str, str] = Field(default_factory=dict, alias="podAnnotations")

    @field_validator("pod_annotations")
    @classmethod
    def _not_ours(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not _QUALIFIED.fullmatch(key):
                raise ValueError(f"{key!r} is not a valid annotation key ([prefix/]name)")
            if key.startswith(_OWN_PREFIX):
                raise ValueError(f"{key!r}: {_OWN_PREFIX}* annotations are the injector's own")
        return value

    @field_validator("host_root")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"must be an absolute path, got {value!r}")
        return value.rstrip("/") or "/"

    def all_excluded_namespaces(self) -> frozenset[str]:
        return frozenset((*self.excluded_namespaces, self.namespace))


def parse_config(text: str, *, source: str = "config") -> InjectorConfig:
    """Parse YAML text into a config; an empty document gives the defaults."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top, got {type(data).__name__}")
    try:
        return InjectorConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<top>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"{source}: {problems}") from exc


def load_config(path: Path | None) -> InjectorConfig:
    """Read a config file (None: the embedded defaults)."""
    if path is None:
        return InjectorConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    return parse_config(text, source=str(path))
