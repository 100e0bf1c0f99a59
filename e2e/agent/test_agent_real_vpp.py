"""The agent's reconcile against a real VPP (VPP_API_SOCKET; skipped with the reason
otherwise): namespaces created with sockets VPP really binds, plan empty afterwards,
everything removed when the pods are gone. VPP must be able to create sockets under
VCL_E2E_ROOT (default /tmp/vcl-e2e: run VPP on the same host/filesystem)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from injected_pods import injected_pod

from injector.agent.apply import Applier
from injector.agent.hostfiles import HostFiles
from injector.agent.plan import Observed, plan
from injector.agent.registration import desired
from vppctl_py import Vpp

SOCKET = os.environ.get("VPP_API_SOCKET")
pytestmark = pytest.mark.skipif(
    not SOCKET, reason="no real VPP: set VPP_API_SOCKET to its binary API socket"
)


def test_register_and_remove_against_real_vpp(vpp: Vpp, root: Path) -> None:
    pods = [injected_pod(f"e2e-{i}") for i in range(3)]
    applier = Applier(vpp, HostFiles(str(root)))
    wanted, _ = desired(pods, str(root))
    try:
        results = applier.apply(plan(wanted, applier.observe()))
        assert all(r.ok for r in results), results
        assert plan(wanted, applier.observe()) == []
        ids = {ns.ns_id for ns in vpp.app_namespaces()}
        for reg in wanted.values():
            assert reg.ns_id in ids
            assert Path(reg.sock_name).is_socket()
    finally:
        # Prune only what this test made: a real VPP may serve real pods' namespaces.
        seen = applier.observe()
        ours = Observed(
            {k: v for k, v in seen.namespaces.items() if k in {r.ns_id for r in wanted.values()}},
            {k: v for k, v in seen.directories.items() if k in wanted},
        )
        results = applier.apply(plan({}, ours))
    assert all(r.ok for r in results), results
    assert not {ns.ns_id for ns in vpp.app_namespaces()} & {r.ns_id for r in wanted.values()}
