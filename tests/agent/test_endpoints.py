"""The endpoint table's format (what the interposer reads: tests/interposer/
test_endpoint_table.py runs the C reader on tables written here) and its publication to
the pods of the node: one inode, renamed into each pod's directory, so a reader sees the
old table or the new one, never a mix, and a pod gone meanwhile is only reported."""

from __future__ import annotations

import ipaddress
import os
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from injector.agent.endpoints import (
    ENDPOINTS_NAME,
    HEADER,
    TCP,
    UDP,
    Endpoint,
    Listener,
    PodFacts,
    TableError,
    decode,
    encode,
    fnv1a,
    plan_table,
    publish,
)

addresses = st.one_of(
    st.ip_addresses(v=4),
    st.ip_addresses(v=6).filter(lambda a: a.ipv4_mapped is None),
)
endpoints = st.builds(Endpoint, addresses, st.integers(1, 65535), st.sampled_from([TCP, UDP]))


@given(st.lists(endpoints, max_size=40), st.integers(0, 2**64 - 1))
def test_what_is_written_reads_back_sorted_and_deduplicated(
    items: list[Endpoint], generation: int
) -> None:
    data = encode(items, generation)
    got_generation, got = decode(data)
    assert got_generation == generation
    assert set(got) == set(items) and len(got) == len(set(items))
    keys = [e.key() for e in got]
    assert keys == sorted(keys)  # what the interposer's binary search needs


def test_layout_is_the_one_the_interposer_reads() -> None:
    data = encode([Endpoint(ipaddress.ip_address("10.0.0.7"), 8080)], 5)
    assert data[:8] == b"VCLEPT1\0"
    assert struct.unpack("<IIQII", data[8:32]) == (1, 1, 5, 20, fnv1a(data[32:]))
    assert data[32:] == bytes([4, 6]) + (8080).to_bytes(2, "big") + bytes([10, 0, 0, 7]) + bytes(12)


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (b"", "shorter than its header"),
        (b"NOTATABL" + bytes(24), "not an endpoint table"),
        (HEADER.pack(b"VCLEPT1\0", 2, 0, 1, 20, fnv1a(b"")), "not version 1"),
        (HEADER.pack(b"VCLEPT1\0", 1, 1, 1, 20, fnv1a(b"")), "0 bytes of entries for a count of 1"),
        (HEADER.pack(b"VCLEPT1\0", 1, 0, 1, 20, 1), "checksum mismatch"),
    ],
)
def test_a_bad_table_is_named(data: bytes, said: str) -> None:
    with pytest.raises(TableError, match=said):
        decode(data)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("10.0.0.1", 0, TCP), "port 0"),
        (("10.0.0.1", 70000, TCP), "port 70000"),
        (("10.0.0.1", 80, 1), "protocol 1"),
        (("::ffff:10.0.0.1", 80, TCP), "v4-mapped"),
    ],
)
def test_an_endpoint_that_cannot_be_listed_is_refused(
    args: tuple[str, int, int], said: str
) -> None:
    with pytest.raises(ValueError, match=said):
        Endpoint(ipaddress.ip_address(args[0]), args[1], args[2])


def test_publish_gives_every_pod_the_same_inode_atomically(tmp_path: Path) -> None:
    pods = [tmp_path / "pods" / f"uid-{i}" for i in range(3)]
    for d in pods:
        d.mkdir(parents=True)
    one = encode([Endpoint(ipaddress.ip_address("10.0.0.1"), 80)], 1)
    assert publish(one, tmp_path, pods) == []
    with open(pods[0] / ENDPOINTS_NAME, "rb") as held:  # a reader in the middle of reading
        two = encode([Endpoint(ipaddress.ip_address("10.0.0.2"), 80)], 2)
        gone = tmp_path / "pods" / "uid-deleted"
        assert publish(two, tmp_path, [*pods, gone]) == [gone]
        inodes = {os.stat(d / ENDPOINTS_NAME).st_ino for d in pods}
        assert len(inodes) == 1
        assert all((d / ENDPOINTS_NAME).read_bytes() == two for d in pods)
        assert held.read() == one  # the old table stays whole for whoever had it open
    assert os.stat(pods[0] / ENDPOINTS_NAME).st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pods"]  # nothing staged is left
    assert not any(p.name.startswith(".") for d in pods for p in d.iterdir())


# ---- the table from pods, VPP's listeners and NetworkPolicies ----


def facts(uid: str, ips: tuple[str, ...], labels: dict[str, str] | None = None,
          annotations: dict[str, str] | None = None, namespace: str = "shop") -> PodFacts:  # fmt: skip
    return PodFacts(uid, namespace, uid, f"ns-{uid}", ips, labels or {}, annotations or {})


def policy(name: str, selector: dict[str, object], types: list[str] | None = None,
           namespace: str = "shop", egress: bool = False) -> dict[str, object]:  # fmt: skip
    spec: dict[str, object] = {"podSelector": selector}
    if types is not None:
        spec["policyTypes"] = types
    if egress:
        spec["egress"] = [{}]
    return {"metadata": {"name": name, "namespace": namespace}, "spec": spec}


def ep(text: str) -> Endpoint:
    host, _, port = text.rpartition(":")
    return Endpoint(ipaddress.ip_address(host.strip("[]")), int(port))


WEB = facts("web", ("10.244.0.5", "fd00::5"), {"app": "web"})
DB = facts("db", ("10.244.0.6",), {"app": "db", "tier": "data"})


def test_a_wildcard_listener_is_served_at_the_pods_own_ips_only() -> None:
    got = plan_table(
        [WEB, DB],
        [
            Listener("ns-web", "0.0.0.0:80", "T"),
            Listener("ns-web", ":::8443", "T"),  # [::]:8443 as VPP prints it
            Listener("ns-db", "10.244.0.6:5432", "T"),
            Listener("ns-db", "10.9.9.9:6000", "T"),  # not the pod's address
            Listener("ns-db", "0.0.0.0:53", "U"),
            Listener("ns-gone", "0.0.0.0:81", "T"),  # a namespace of no registered pod
        ],
        [],
    )
    assert got.endpoints == {ep("10.244.0.5:80"), ep("[fd00::5]:8443"), ep("10.244.0.6:5432")}
    assert got.pods["db"].not_served == (
        ("0.0.0.0:53/udp", "UDP stays on the kernel"),
        ("10.9.9.9:6000", "not at the pod's IPs"),
    )
    assert got.pods["web"].egress_restricted_by == ()


@pytest.mark.parametrize(
    ("policies", "excluded", "egress"),
    [
        ([policy("all", {})], {"web", "db"}, ()),  # an empty selector selects every pod
        ([policy("web-only", {"matchLabels": {"app": "web"}})], {"web"}, ()),
        ([policy("other-ns", {}, namespace="billing")], set(), ()),
        ([policy("egress", {}, types=["Egress"])], set(), ("egress",)),
        ([policy("implied", {"matchLabels": {"app": "db"}}, egress=True)], {"db"}, ()),
        ([policy("both", {}, types=["Ingress", "Egress"])], {"web", "db"}, ("both",)),
        ([policy("expr", {"matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["data"]}]})], {"db"}, ()),
        ([policy("notin", {"matchExpressions": [
            {"key": "app", "operator": "NotIn", "values": ["web"]}]})], {"db"}, ()),
        ([policy("exists", {"matchExpressions": [
            {"key": "tier", "operator": "Exists"}]})], {"db"}, ()),
        ([policy("absent", {"matchExpressions": [
            {"key": "tier", "operator": "DoesNotExist"}]})], {"web"}, ()),
        # a selector this code cannot read selects: the kernel is the safe side
        ([policy("odd", {"matchExpressions": [{"key": "a", "operator": "Near"}]})],
         {"web", "db"}, ()),
    ],
)  # fmt: skip
def test_pods_selected_by_a_network_policy_are_left_to_the_kernel(
    policies: list[dict[str, object]], excluded: set[str], egress: tuple[str, ...]
) -> None:
    listeners = [Listener("ns-web", "0.0.0.0:80", "T"), Listener("ns-db", "0.0.0.0:5432", "T")]
    got = plan_table([WEB, DB], listeners, policies)
    served = {uid for uid, p in got.pods.items() if p.served}
    assert served == {"web", "db"} - excluded
    for uid in excluded:
        (why,) = got.pods[uid].not_served
        assert "selected by NetworkPolicy" in why[1] and "(ingress)" in why[1]
    if "db" not in excluded:
        assert got.pods["db"].egress_restricted_by == (
            egress if policies[0]["metadata"]["namespace"] == "shop" else ()  # type: ignore[index]
        )


def test_a_pod_may_opt_out() -> None:
    pod = facts("web", ("10.244.0.5",), annotations={"vcl.io/vpp-ingress": "false"})
    got = plan_table([pod], [Listener("ns-web", "0.0.0.0:80", "T")], [])
    assert got.endpoints == frozenset()
    assert got.pods["web"].not_served == (("0.0.0.0:80", 'vcl.io/vpp-ingress: "false"'),)


ips4 = st.ip_addresses(v=4).map(str)
pods_strategy = st.lists(
    st.builds(
        lambda i, ips, app: facts(f"p{i}", tuple(ips), {"app": app}),
        st.integers(0, 5), st.lists(ips4, min_size=1, max_size=2), st.sampled_from(["a", "b"]),
    ),
    max_size=5, unique_by=lambda p: p.uid,
)  # fmt: skip
listeners_strategy = st.lists(
    st.builds(
        lambda i, host, port, t: Listener(f"ns-p{i}", f"{host}:{port}", t),
        st.integers(0, 5), st.one_of(st.just("0.0.0.0"), ips4), st.integers(1, 65535),
        st.sampled_from(["T", "CT:T", "U"]),
    ),
    max_size=12,
)  # fmt: skip


@given(pods_strategy, listeners_strategy, st.sampled_from(["a", "b", None]))
def test_the_table_never_serves_what_it_must_not(
    pods: list[PodFacts], listeners: list[Listener], guarded: str | None
) -> None:
    policies = [policy("guard", {"matchLabels": {"app": guarded}})] if guarded else []
    got = plan_table(pods, listeners, policies)
    for e in got.endpoints:
        owners = [
            p for p in pods
            if str(e.address) in p.ips and p.labels["app"] != guarded
            and any(x.ns_id == p.ns_id and x.local.endswith(f":{e.port}")
                    and not x.transport.endswith("U") for x in listeners)
        ]  # fmt: skip
        assert owners, e  # a served endpoint is a listening, unguarded pod's own address
    assert set().union(*(set(p.served) for p in got.pods.values())) == got.endpoints
