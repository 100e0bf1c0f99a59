"""The typed client against FakeVpp: the shared contract (also run on a real VPP by
e2e/vppctl), then what only the fake can set up: apps and their workers, sessions and
their owners, interfaces with addresses, netns namespaces, the session layer off,
binary-API attach refused, and the half-made namespace the client refuses to delete."""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

import pytest

from vppctl_py import (
    App,
    AppWorker,
    InterfaceAddress,
    Vpp,
    VppApiError,
    VppInputError,
    interface_with_address,
)
from vppctl_py.testing import FakeVpp

_spec = importlib.util.spec_from_file_location(
    "client_contract", Path(__file__).with_name("client_contract.py")
)
assert _spec is not None and _spec.loader is not None
contract = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("client_contract", contract)
_spec.loader.exec_module(contract)


class TestClientContract(contract.ClientContract):
    """Run against FakeVpp through the `vpp` fixture of conftest.py."""


def test_apps_with_workers_per_namespace(fake: FakeVpp, vpp: Vpp, sock_dir: Path) -> None:
    vpp.add_app_namespace("tenant-a", 1111, str(sock_dir / "a"))
    vpp.add_app_namespace("tenant-b", 2222, "abstract:vpp-ns-tenant-b")
    server = fake.attach_app("tenant-a", "python3-ldp-31069", workers=3)
    test_server = fake.attach_app("tenant-b", "vcl_test_server", workers=2)
    apps = {app.index: app for app in vpp.apps()}
    assert apps[server].ns_id == "tenant-a"
    assert apps[server].workers == (
        AppWorker(server, 1),
        AppWorker(server, 2),
        AppWorker(server, 3),
    )
    assert [w.wrk_index for w in apps[test_server].workers] == [4, 5]
    fake.detach_app(server)
    assert [app.name for app in vpp.apps()] == ["vcl_test_server"]


def test_deleting_a_namespace_detaches_its_apps(fake: FakeVpp, vpp: Vpp, sock_dir: Path) -> None:
    vpp.add_app_namespace("tenant-b", 2222, str(sock_dir / "b"))
    fake.attach_app("tenant-b", "vcl_test_server", workers=2)
    vpp.del_app_namespace("tenant-b")
    assert vpp.apps() == []


def test_app_indices_start_at_one_and_are_reused(fake: FakeVpp, vpp: Vpp, sock_dir: Path) -> None:
    vpp.add_app_namespace("t", 1, str(sock_dir / "t"))
    first = fake.attach_app("t", "a")
    second = fake.attach_app("t", "b")
    assert (first, second) == (1, 2)
    fake.detach_app(first)
    assert fake.attach_app("t", "c") == 1
    assert vpp.apps() == [
        App(1, "c", "t", (AppWorker(1, 1),)),
        App(2, "b", "t", (AppWorker(2, 2),)),
    ]


def test_sessions_are_attributed_to_apps_and_namespaces(
    fake: FakeVpp, vpp: Vpp, sock_dir: Path
) -> None:
    vpp.add_app_namespace("tenant-a", 1, str(sock_dir / "a"))
    vpp.add_app_namespace("tenant-b", 2, str(sock_dir / "b"))
    server = fake.attach_app("tenant-a", "server")
    client = fake.attach_app("tenant-a", "client")
    other = fake.attach_app("tenant-b", "other")
    fake.add_session(server, "10.99.0.1:5001", transport="T")
    fake.add_session(server, "10.99.0.1:5001", kind="accepted", transport="CT:T")
    fake.add_session(client, "0.0.0.0:0", "10.99.0.1:5001", kind="connected", transport="CT:T")
    fake.add_session(other, "0.0.0.0:5201")
    owners = [(s.app, s.ns_id, s.state) for s in vpp.sessions()]
    assert owners == [
        ("server", "tenant-a", "LISTEN"),
        ("server", "tenant-a", "ESTABLISHED"),
        ("client", "tenant-a", "ESTABLISHED"),
        ("other", "tenant-b", "LISTEN"),
    ]
    assert [s.app for s in vpp.sessions("tenant-b")] == ["other"]
    # the cheap read of the listeners alone gives the same listening rows
    listening = [(s.app, s.ns_id, s.local, s.transport) for s in vpp.listeners()]
    assert listening == [
        (s.app, s.ns_id, s.local, s.transport) for s in vpp.sessions() if s.state == "LISTEN"
    ]


def test_replicas_apps_are_told_apart_by_their_pod_though_vpp_cuts_names(
    fake: FakeVpp, vpp: Vpp, sock_dir: Path
) -> None:
    """Seen on a real cluster: two replicas' processes are both pid 1, so LDP's own naming
    gave both "twin-ldp-1" and neither's sessions could be attributed; with the pod's uid
    in the name they can, though VPP prints 20 characters of it in `show app` (running
    into the namespace column) and 25 in `show app listeners` (into the worker's)."""
    uids = ("6aa69a57-9646-4259-aca3-0fc33a03d2ed", "6cc3c50c-00a3-44b5-8a45-5110c18f780b")
    for n, uid in enumerate(uids):
        vpp.add_app_namespace(f"vcl-{uid}", n + 1, str(sock_dir / str(n)))
        app = fake.attach_app(f"vcl-{uid}", f"twin-{uid}-ldp-1")
        fake.add_session(app, f"10.244.0.{60 + n}:7000", transport="T")
        fake.add_session(app, "0.0.0.0:0", f"10.244.0.{70 + n}:80", kind="connected",
                         transport="CT:T")  # fmt: skip
    assert [(a.name, a.ns_id) for a in vpp.apps()] == [
        ("twin-6aa69a57-9646-4", f"vcl-{uids[0]}"),
        ("twin-6cc3c50c-00a3-4", f"vcl-{uids[1]}"),
    ]
    assert [(s.local, s.ns_id) for s in vpp.listeners()] == [
        ("10.244.0.60:7000", f"vcl-{uids[0]}"),
        ("10.244.0.61:7000", f"vcl-{uids[1]}"),
    ]
    assert [(s.remote, s.ns_id) for s in vpp.sessions() if s.state != "LISTEN"] == [
        ("10.244.0.70:80", f"vcl-{uids[0]}"),
        ("10.244.0.71:80", f"vcl-{uids[1]}"),
    ]


def test_interfaces_with_addresses_and_vrf(fake: FakeVpp, vpp: Vpp) -> None:
    loop0 = fake.add_interface("loop0", ["10.99.0.1/24", "fd00::1/64"])
    pod = fake.add_interface("tap7", ["10.1.2.3/32"], vrf=7)
    found = {i.name: i for i in vpp.interfaces()}
    assert found["loop0"].index == loop0
    assert found["loop0"].addresses == (
        InterfaceAddress("10.99.0.1", 24),
        InterfaceAddress("fd00::1", 64),
    )
    assert (found["tap7"].index, found["tap7"].vrf) == (pod, 7)
    assert found["local0"].admin_up is False


@pytest.mark.parametrize(
    ("ip", "name"),
    [("10.1.2.3", "tap7"), ("fd00:0::1", "loop0"), ("10.99.0.1", "loop0"), ("10.1.2.4", None)],
)
def test_interface_with_address(fake: FakeVpp, vpp: Vpp, ip: str, name: str | None) -> None:
    fake.add_interface("loop0", ["10.99.0.1/24", "fd00::1/64"])
    fake.add_interface("tap7", ["10.1.2.3/32"], vrf=7)
    found = interface_with_address(vpp.interfaces(), ip)
    assert (found.name if found else None) == name


def test_namespace_bound_to_interface_takes_its_vrf(fake: FakeVpp, vpp: Vpp) -> None:
    pod = fake.add_interface("tap7", ["10.1.2.3/32"], vrf=7)
    vpp.add_app_namespace("pod", 5, "abstract:pod", sw_if_index=pod)
    (ns,) = [n for n in vpp.app_namespaces() if n.ns_id == "pod"]
    assert ns.interface == "tap7"
    assert fake.model.by_id("pod").ip4_fib_id == 7  # type: ignore[union-attr]


def test_netns_namespace_uses_v3_and_vpp_builds_the_socket_name(vpp: Vpp) -> None:
    vpp.add_app_namespace("pod", 5, "abstract:vcl-pod", netns="cni-1234")
    (ns,) = [n for n in vpp.app_namespaces() if n.ns_id == "pod"]
    assert ns.sock_name == "abstract:vcl-pod,netns_name=cni-1234"
    vpp.del_app_namespace("pod")  # VPP's own name for it must not look half-made
    assert [n.ns_id for n in vpp.app_namespaces()] == ["default"]


def test_session_layer_disabled(fake: FakeVpp, vpp: Vpp, sock_dir: Path) -> None:
    vpp._conn.checked("session_enable_disable_v2", rt_engine_type=0)
    assert vpp.cli("show app ns") == "show app: session layer is not enabled\n"
    with pytest.raises(VppApiError) as err:
        vpp.add_app_namespace("t", 1, str(sock_dir / "t"))
    assert (err.value.retval, err.value.name) == (-30, "FEATURE_DISABLED")
    with pytest.raises(VppApiError):
        vpp.app_namespaces()
    vpp.session_enable()
    assert vpp.add_app_namespace("t", 1, str(sock_dir / "t")) == 1


@pytest.mark.parametrize(
    ("message", "fields"),
    [
        ("app_attach", {"options": [0] * 18, "namespace_id": ""}),
        ("app_worker_add_del", {"app_index": 0, "wrk_index": 0, "is_add": True}),
    ],
)
def test_binary_api_attach_is_feature_disabled(
    vpp: Vpp, message: str, fields: dict[str, object]
) -> None:
    """The socket app API is always on in 26.06: workers never register through us."""
    assert vpp._conn.call(message, **fields).retval == -30


def test_half_made_namespace_is_not_deleted(fake: FakeVpp, vpp: Vpp) -> None:
    """A bad sock_name sent by someone else leaves a half-made namespace; deleting it
    would SIGSEGV VPP 26.06, so the client refuses and says why."""
    reply = vpp._conn.call(
        "app_namespace_add_del_v4", is_add=True, namespace_id="half-0", sock_name="@bad", secret=1
    )
    assert reply.retval == -1
    (ns,) = [n for n in vpp.app_namespaces() if n.ns_id == "half-0"]
    assert (ns.secret, ns.interface, ns.sock_name) == (0, "local0", "@bad")
    with pytest.raises(VppInputError, match="crashes VPP"):
        vpp.del_app_namespace("half-0")
    assert fake.crashed is None


def test_missing_directory_leaves_half_made_namespace_that_deletes_fine(
    vpp: Vpp, tmp_path: Path
) -> None:
    with pytest.raises(VppApiError) as err:
        vpp.add_app_namespace("half-2", 1, str(tmp_path / "no-such-dir" / "x.sock"))
    assert err.value.retval == -1
    assert "half-2" in {n.ns_id for n in vpp.app_namespaces()}
    vpp.del_app_namespace("half-2")
    assert "half-2" not in {n.ns_id for n in vpp.app_namespaces()}


def test_missing_netns_fails_the_add_like_a_missing_directory(vpp: Vpp) -> None:
    """VPP opens the netns before making the abstract socket (vppinfra/socket.c): a pod
    whose sandbox is gone gets -1 and a half-made namespace, and one that exists works."""
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="ns") as short:  # netns is string[64]
        with pytest.raises(VppApiError) as err:
            vpp.add_app_namespace("gone", 1, "abstract:vcl-injector", netns=f"{short}/cni-x")
        assert err.value.retval == -1
        assert "gone" in {n.ns_id for n in vpp.app_namespaces()}
        vpp.del_app_namespace("gone")
        Path(short, "cni-y").touch()
        vpp.add_app_namespace("live", 1, "abstract:vcl-injector", netns=f"{short}/cni-y")
        (ns,) = [n for n in vpp.app_namespaces() if n.ns_id == "live"]
        assert ns.sock_name == f"abstract:vcl-injector,netns_name={short}/cni-y"
