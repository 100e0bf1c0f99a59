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
    TableError,
    decode,
    encode,
    fnv1a,
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
