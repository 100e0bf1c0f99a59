"""The client behaviour that holds on FakeVpp and on a real VPP 26.06 alike.

Collected through TestClientContract in tests/vppctl/test_client.py (FakeVpp) and in
e2e/vppctl/test_real_vpp.py (a real VPP). Needs fixtures `vpp` and `sock_dir`.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from vppctl_py import Vpp, VppApiError, VppCliError

NO_INDEX = 0xFFFFFFFF


def ns_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class ClientContract:
    def test_version_and_ping(self, vpp: Vpp) -> None:
        version = vpp.version()
        assert version.program == "vpe"
        assert version.version
        assert vpp.ping().vpe_pid > 0

    def test_cli_passthrough_and_unknown_command(self, vpp: Vpp) -> None:
        assert vpp.cli("show version").startswith("vpp v")
        with pytest.raises(VppCliError) as err:
            vpp.cli("show no-such-thing")
        assert err.value.retval == -1
        assert "unknown input `no-such-thing'" in err.value.output

    def test_cli_error_text_with_retval_zero_is_returned(self, vpp: Vpp) -> None:
        assert vpp.cli("show app ns verbose") == "unknown input [verbose]\n"

    def test_session_enable_is_a_noop_when_enabled(self, vpp: Vpp) -> None:
        vpp.session_enable()
        assert vpp.app_namespaces()[0].ns_id == "default"

    def test_add_list_delete(self, vpp: Vpp, sock_dir: Path) -> None:
        ns_id, sock = ns_name("c"), str(sock_dir / "c.sock")
        index = vpp.add_app_namespace(ns_id, 1111, sock)
        assert index > 0
        (ns,) = [n for n in vpp.app_namespaces() if n.ns_id == ns_id]
        assert (ns.index, ns.secret, ns.sock_name, ns.bound_to_interface) == (
            index,
            1111,
            sock,
            False,
        )
        assert Path(sock).is_socket()
        vpp.del_app_namespace(ns_id)
        assert ns_id not in {n.ns_id for n in vpp.app_namespaces()}
        assert Path(sock).exists(), "VPP 26.06 leaves the socket file after delete"

    def test_duplicate_add_keeps_index_and_socket_updates_secret(
        self, vpp: Vpp, sock_dir: Path
    ) -> None:
        ns_id = ns_name("dup")
        first = vpp.add_app_namespace(ns_id, 1, str(sock_dir / "a.sock"))
        again = vpp.add_app_namespace(ns_id, 9999, str(sock_dir / "other.sock"))
        (ns,) = [n for n in vpp.app_namespaces() if n.ns_id == ns_id]
        assert again == first
        assert (ns.secret, ns.sock_name) == (9999, str(sock_dir / "a.sock"))
        assert not (sock_dir / "other.sock").exists()
        vpp.del_app_namespace(ns_id)

    def test_delete_missing_is_session_e_invalid(self, vpp: Vpp) -> None:
        with pytest.raises(VppApiError) as err:
            vpp.del_app_namespace(ns_name("missing"))
        assert (err.value.retval, err.value.name) == (-19, "SESSION_E_INVALID")
        assert err.value.message == "app_namespace_add_del_v4"
        vpp.del_app_namespace(ns_name("missing"), missing_ok=True)

    def test_freed_index_is_reused(self, vpp: Vpp, sock_dir: Path) -> None:
        a, b, c = ns_name("a"), ns_name("b"), ns_name("c")
        index_a = vpp.add_app_namespace(a, 1, str(sock_dir / "a.sock"))
        vpp.add_app_namespace(b, 2, str(sock_dir / "b.sock"))
        vpp.del_app_namespace(a)
        assert vpp.add_app_namespace(c, 3, str(sock_dir / "c.sock")) == index_a
        vpp.del_app_namespace(b)
        vpp.del_app_namespace(c)

    @pytest.mark.parametrize(
        ("binding", "why"),
        [
            ({"sw_if_index": 99999}, "no such interface"),
            ({"ip4_fib_id": 77, "ip6_fib_id": 77}, "no such FIB"),
            ({"ip4_fib_id": NO_INDEX, "ip6_fib_id": NO_INDEX}, "neither interface nor FIB"),
        ],
    )
    def test_bad_binding_is_session_e_invalid(
        self, vpp: Vpp, sock_dir: Path, binding: dict[str, int], why: str
    ) -> None:
        ns_id = ns_name("bad")
        with pytest.raises(VppApiError) as err:
            vpp.add_app_namespace(ns_id, 1, str(sock_dir / "bad.sock"), **binding)
        assert err.value.retval == -19, why
        assert ns_id not in {n.ns_id for n in vpp.app_namespaces()}

    def test_abstract_socket(self, vpp: Vpp) -> None:
        ns_id = ns_name("abs")
        vpp.add_app_namespace(ns_id, 2222, f"abstract:{ns_id}")
        (ns,) = [n for n in vpp.app_namespaces() if n.ns_id == ns_id]
        assert ns.sock_name == f"abstract:{ns_id}"
        vpp.del_app_namespace(ns_id)

    def test_interfaces_include_local0(self, vpp: Vpp) -> None:
        interfaces = vpp.interfaces()
        assert interfaces[0].index == 0
        assert interfaces[0].name == "local0"

    def test_apps_and_sessions_are_lists(self, vpp: Vpp) -> None:
        assert isinstance(vpp.apps(), list)
        assert isinstance(vpp.sessions(), list)

    def test_memory(self, vpp: Vpp) -> None:
        heap = vpp.memory()
        assert heap.size >= heap.used > 0
        assert 0 < heap.available <= heap.size

    def test_a_pod_interface_carries_its_addresses_in_its_vrf_and_goes_whole(
        self, vpp: Vpp
    ) -> None:
        """Mode local's per-pod loopback: tagged, in the node VRF, the pod's IPs as host
        routes, up; a clash with an address another interface has leaves nothing
        behind; deleting twice says so unless missing_ok."""
        tag = ns_name("vcl:pod")
        vpp.ensure_vrf(4242, "vcl-contract")
        vpp.ensure_vrf(4242, "vcl-contract")  # again: a no-op
        before = {i.index for i in vpp.interfaces()}
        index = vpp.add_pod_interface(tag, ["10.244.42.5", "fd00:244:42::5"], 4242)
        try:
            (made,) = [i for i in vpp.interfaces() if i.tag == tag]
            assert made.index == index and made.name.startswith("loop")
            assert made.vrf == 4242 and made.admin_up
            assert {str(a) for a in made.addresses} == {"10.244.42.5/32", "fd00:244:42::5/128"}
            for clash in (["10.244.42.5"], ["fd00:244:42::5"]):
                with pytest.raises(VppApiError) as err:
                    vpp.add_pod_interface(ns_name("vcl:dup"), clash, 4242)
                assert err.value.retval in (-105, -127)
                assert {i.index for i in vpp.interfaces()} == before | {index}
        finally:
            vpp.del_interface(index)
        assert {i.index for i in vpp.interfaces()} == before
        vpp.del_interface(index, missing_ok=True)
        with pytest.raises(VppApiError) as err:
            vpp.del_interface(index)
        assert err.value.retval == -2
