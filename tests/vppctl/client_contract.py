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
