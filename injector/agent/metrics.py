"""The agent's Prometheus metrics, in a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class AgentMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.pods_registered = Gauge(
            "vcl_agent_pods_registered", "Injected pods whose VPP namespace is in place", registry=r
        )
        self.registration_errors = Counter(
            "vcl_agent_registration_errors",
            "Failed registrations by reason (vpp-error, capacity, invalid, io-error, "
            "invalid-status)",
            ["reason"],
            registry=r,
        )
        self.vpp_up = Gauge("vcl_agent_vpp_up", "1 while VPP answers", registry=r)
        self.vpp_restarts = Counter("vcl_agent_vpp_restarts", "VPP restarts seen", registry=r)
        self.resyncs = Counter("vcl_agent_resyncs", "Reconcile passes", registry=r)
        self.resync_duration = Histogram(
            "vcl_agent_resync_duration_seconds",
            "Duration of one reconcile pass",
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30),
            registry=r,
        )
        self.app_workers = Gauge(
            "vcl_agent_app_workers", "VCL app workers attached", ["namespace", "pod"], registry=r
        )
        self.sessions = Gauge(
            "vcl_agent_sessions", "VPP sessions of the pod's apps", ["namespace", "pod"], registry=r
        )
        self.evictions = Counter(
            "vcl_agent_evictions", "Pods evicted after a VPP restart", ["result"], registry=r
        )
        self.endpoint_table_size = Gauge(
            "vcl_agent_endpoint_table_size",
            "Endpoints (address, port, protocol) VPP serves on this node (mode local)",
            registry=r,
        )
        self.endpoint_publish = Histogram(
            "vcl_agent_endpoint_publish_seconds",
            "From reading VPP's listeners to the new table in every pod's directory",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2),
            registry=r,
        )
