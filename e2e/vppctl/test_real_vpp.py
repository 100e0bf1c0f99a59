"""The client contract of tests/vppctl/client_contract.py, run against a real VPP
(VPP_API_SOCKET=/run/vpp/api.sock python3 -m pytest e2e/vppctl); skipped without one.
Also checks that the real VPP's CLI texts parse and that the CRCs match our definitions."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from vppctl_py import Vpp, cli_text

_path = Path(__file__).resolve().parents[2] / "tests" / "vppctl" / "client_contract.py"
_spec = importlib.util.spec_from_file_location("client_contract", _path)
assert _spec is not None and _spec.loader is not None
contract = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("client_contract", contract)
_spec.loader.exec_module(contract)


class TestClientContractOnRealVpp(contract.ClientContract):
    """Same assertions as against FakeVpp."""


def test_real_cli_texts_parse(vpp: Vpp) -> None:
    assert cli_text.parse_app_namespaces(vpp.cli("show app ns"))[0].ns_id == "default"
    cli_text.parse_apps(vpp.cli("show app"))
    cli_text.parse_sessions(vpp.cli("show session verbose"))
    heap = cli_text.parse_main_heap(vpp.cli("show memory main-heap"))
    assert heap.size > heap.used > 0
