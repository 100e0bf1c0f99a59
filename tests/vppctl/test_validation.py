"""Input refused before anything reaches VPP: namespace ids (length from the API JSON's
string[64], charset, `default`), sock_names (absolute normal path or abstract:NAME,
sockaddr_un length, charset), netns, integer widths; each refusal names field and rule,
and the fake sees no request."""

from __future__ import annotations

from pathlib import Path

import pytest

from vppctl_py import Vpp, VppInputError
from vppctl_py.testing import FakeVpp
from vppctl_py.validation import FieldLimits, check_ns_id, check_sock_name

LIMITS = FieldLimits(namespace_id=63, netns=63)


@pytest.mark.parametrize("ns_id", ["a", "tenant-a", "pod_1.x", "x" * 63, "A-Z.0_9"])
def test_good_ns_ids(ns_id: str) -> None:
    check_ns_id(ns_id, LIMITS)


@pytest.mark.parametrize(
    ("ns_id", "rule"),
    [
        ("", "must not be empty"),
        ("x" * 64, "is 64 bytes; VPP's namespace_id field holds at most 63"),
        ("é" * 32, "is 64 bytes"),
        ("a b", "may contain only"),
        ("a/b", "may contain only"),
        ("a\x00b", "may contain only"),
        ("tenant;rm", "may contain only"),
        ("default", "built-in namespace"),
    ],
)
def test_bad_ns_ids(ns_id: str, rule: str) -> None:
    with pytest.raises(VppInputError) as err:
        check_ns_id(ns_id, LIMITS)
    assert err.value.field == "ns_id"
    assert rule in err.value.rule


@pytest.mark.parametrize(
    "sock_name",
    [
        "/run/vpp/app_ns_sockets/tenant-a",
        "/var/run/vcl/pods/1234-abcd/app.sock",
        "abstract:vpp-ns-tenant-b",
        "/" + "a" * 106,
    ],
)
def test_good_sock_names(sock_name: str) -> None:
    check_sock_name(sock_name)


@pytest.mark.parametrize(
    ("sock_name", "rule"),
    [
        ("@bad", "must be an absolute path or 'abstract:NAME'"),
        ("relative-name", "must be an absolute path or 'abstract:NAME'"),
        ("", "must be an absolute path or 'abstract:NAME'"),
        ("unix:/run/x", "must be an absolute path or 'abstract:NAME'"),
        ("abstract:", "abstract socket name must not be empty"),
        ("abstract:a b", "abstract name may contain only"),
        ("abstract:x,netns_name=y", "abstract name may contain only"),
        ("/run/vpp/../etc/x", "no '//', '.' or '..'"),
        ("/run//x", "no '//', '.' or '..'"),
        ("/run/x/", "no '//', '.' or '..'"),
        ("/run/x y", "path may contain only"),
        ("/" + "a" * 107, "is 108 bytes; a unix socket name holds at most 107"),
        ("abstract:" + "a" * 108, "is 108 bytes"),
    ],
)
def test_bad_sock_names(sock_name: str, rule: str) -> None:
    with pytest.raises(VppInputError) as err:
        check_sock_name(sock_name)
    assert err.value.field == "sock_name"
    assert rule in err.value.rule
    assert repr(sock_name) in str(err.value)


def test_limits_come_from_the_api_definitions(vpp: Vpp) -> None:
    assert vpp.limits == FieldLimits(namespace_id=63, netns=63)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"ns_id": "x" * 64}, "ns_id"),
        ({"sock_name": "@bad"}, "sock_name"),
        ({"secret": -1}, "secret"),
        ({"secret": 1 << 64}, "secret"),
        ({"sw_if_index": -1}, "sw_if_index"),
        ({"ip4_fib_id": 1 << 32}, "ip4_fib_id"),
        ({"netns": "ns with space", "sock_name": "abstract:x"}, "netns"),
        ({"netns": "cni-1"}, "sock_name"),  # netns needs an abstract socket
    ],
)
def test_refused_before_sending(
    fake: FakeVpp, vpp: Vpp, kwargs: dict[str, object], field: str
) -> None:
    args: dict[str, object] = {
        "ns_id": "t",
        "secret": 1,
        "sock_name": str(fake.workdir / "t"),
        **kwargs,
    }
    with pytest.raises(VppInputError) as err:
        vpp.add_app_namespace(**args)  # type: ignore[arg-type]
    assert err.value.field == field
    assert fake.namespace_ids() == ["default"]


def test_delete_validates_the_id(vpp: Vpp) -> None:
    with pytest.raises(VppInputError, match="built-in"):
        vpp.del_app_namespace("default")


def test_socket_path_at_the_limit_is_bound(fake: FakeVpp, vpp: Vpp, tmp_path: Path) -> None:
    base = str(tmp_path / "s")
    path = base + "/" + "x" * (107 - len(base) - 1)
    Path(base).mkdir()
    vpp.add_app_namespace("long", 1, path)
    assert Path(path).is_socket()
