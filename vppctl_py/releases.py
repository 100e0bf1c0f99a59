"""The VPP releases vppctl_py supports: for each, the CRC of every message it sends or reads.

With definitions taken from the running VPP (get_api_json), papi can always pack and
unpack whatever that VPP speaks; what it cannot tell is whether our code's idea of a
message (its fields and their meaning) is still right. A message's CRC changes exactly
when its definition does, so comparing VPP's message table with the CRCs recorded from
each supported release catches version skew at connect time, with the messages named,
instead of as a wrong field deep in a reconcile loop.

`api_crcs.json` is written by the recorder (`python3 -m e2e.record.vpp --crc-table ...`)
from a real VPP of each release; it is data, never edited by hand.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources

from vppctl_py.errors import CrcMismatch, VppUnsupportedRelease

CRC_TABLE = "api_crcs.json"


@dataclass(frozen=True)
class Release:
    name: str  # e.g. "26.06"
    version: str  # what show_version said when it was recorded
    crcs: Mapping[str, str]  # message name -> "0x..." CRC


def parse_table(text: str) -> tuple[Release, ...]:
    """Releases from the JSON text of an api_crcs.json."""
    doc = json.loads(text)
    return tuple(
        Release(name, str(entry["version"]), dict(entry["messages"]))
        for name, entry in sorted(doc["releases"].items())
    )


@functools.cache
def supported() -> tuple[Release, ...]:
    """The releases shipped with this vppctl_py (read once)."""
    return parse_table(resources.files("vppctl_py").joinpath(CRC_TABLE).read_text())


def differences(release: Release, vpp_table: Iterable[str]) -> tuple[CrcMismatch, ...]:
    """The messages of `release` that VPP's message table (`name_crc` keys) lacks."""
    keys = set(vpp_table)
    by_name = {key.rpartition("_")[0]: "0x" + key.rpartition("_")[2] for key in keys}
    return tuple(
        CrcMismatch(name, crc, by_name.get(name))
        for name, crc in sorted(release.crcs.items())
        if f"{name}_{crc.removeprefix('0x')}" not in keys
    )


def match_release(
    vpp_table: Iterable[str],
    vpp_version: str,
    releases: tuple[Release, ...] | None = None,
) -> Release:
    """The supported release whose messages VPP speaks exactly; else raise
    VppUnsupportedRelease naming the closest release's differing messages."""
    known = supported() if releases is None else releases
    keys = set(vpp_table)
    scored = [(differences(release, keys), release) for release in known]
    for diffs, release in scored:
        if not diffs:
            return release
    closest_diffs, closest = min(scored, key=lambda pair: len(pair[0]))
    raise VppUnsupportedRelease(
        vpp_version, closest.name, closest_diffs, tuple(r.name for r in known)
    )
