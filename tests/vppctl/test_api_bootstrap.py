"""Where the client's API definitions come from, and version skew caught at connect:
- with no API files anywhere, the definitions come from VPP itself (get_api_json) and
  every call works; the double serves exactly the recorded definitions;
- --api-dir / VPP_API_DIR override it, and definitions that differ from the running
  VPP name the differing messages;
- a VPP whose messages differ from every supported release is refused with one error
  naming each message, both CRCs, VPP's version and the supported releases;
- a VPP that cannot serve its definitions gets an error saying so and what to do;
- the shipped CRC table matches the recorded definitions (the recorder wrote both)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner
from waiting import eventually

from vppctl_py import Vpp, VppApiDefinitionsError, VppUnsupportedRelease, VppVersionMismatch
from vppctl_py.cli import app as vppctl_cli
from vppctl_py.releases import Release, differences, match_release, supported
from vppctl_py.testing import FakeVpp
from vppctl_py.testing.wire import definitions, generated_table, write_api_dir


def recorded_docs(vpp_fixtures: Path) -> list[dict[str, Any]]:
    return json.loads((vpp_fixtures / "api-definitions.json").read_text())  # type: ignore[no-any-return]


def with_crc(docs: list[dict[str, Any]], message: str, crc: str) -> list[dict[str, Any]]:
    for doc in docs:
        for msg in doc["messages"]:
            if msg[0] == message:
                msg[-1]["crc"] = crc
    return docs


def without(docs: list[dict[str, Any]], *messages: str) -> list[dict[str, Any]]:
    for doc in docs:
        doc["messages"] = [m for m in doc["messages"] if m[0] not in messages]
        doc["services"] = {k: v for k, v in doc["services"].items() if k not in messages}
    return docs


def fake_speaking(
    docs: list[dict[str, Any]], workdir: Path, *, leave_out: tuple[str, ...] = ()
) -> FakeVpp:
    """A fake VPP whose messages are `docs` (message ids generated from them), without
    the messages `leave_out` in its message table."""
    path = workdir / "defs.json"
    path.write_text(json.dumps(docs))
    table = generated_table(definitions(json.dumps(docs)))
    table = [(i, key) for i, key in table if key.rpartition("_")[0] not in leave_out]
    return FakeVpp(workdir, definitions=path, message_table=table)


def test_no_api_files_needed(fake: FakeVpp, sock_dir: Path) -> None:
    assert "VPP_API_DIR" not in os.environ
    with Vpp.connect(fake.api_socket) as vpp:
        assert vpp.release == "26.06"
        assert vpp.version().version.startswith("26.06")
        vpp.add_app_namespace("boot", 7, str(sock_dir / "boot"))
        assert [ns.ns_id for ns in vpp.app_namespaces()] == ["default", "boot"]
        assert vpp.interfaces()[0].name == "local0"


def test_the_double_serves_the_recorded_definitions(fake: FakeVpp, vpp_fixtures: Path) -> None:
    assert fake.codec.api_json == (vpp_fixtures / "api-definitions.json").read_text()


def test_api_dir_overrides_bootstrap(fake: FakeVpp, vpp_fixtures: Path, tmp_path: Path) -> None:
    api_dir = write_api_dir(recorded_docs(vpp_fixtures), tmp_path / "api")
    with Vpp.connect(fake.api_socket, api_dir=api_dir) as vpp:
        assert vpp.ping().vpe_pid == fake.pid


def test_api_dir_differing_from_vpp_names_the_messages(
    fake: FakeVpp, vpp_fixtures: Path, tmp_path: Path
) -> None:
    docs = with_crc(recorded_docs(vpp_fixtures), "app_namespace_add_del_v4", "0xdeadbeef")
    api_dir = write_api_dir(docs, tmp_path / "api")
    with pytest.raises(VppVersionMismatch) as err:
        Vpp.connect(fake.api_socket, api_dir=api_dir)
    (mismatch,) = err.value.mismatches
    assert (mismatch.message, mismatch.ours, mismatch.vpp) == (
        "app_namespace_add_del_v4",
        "0xdeadbeef",
        "0x42c1d824",
    )
    assert "app_namespace_add_del_v4 (ours 0xdeadbeef, VPP 0x42c1d824)" in str(err.value)


def test_unsupported_release_is_one_clear_error(vpp_fixtures: Path, tmp_path: Path) -> None:
    docs = with_crc(recorded_docs(vpp_fixtures), "app_namespace_add_del_v4", "0x0badc0de")
    docs = without(docs, "ip_address_dump", "ip_address_details")
    with fake_speaking(docs, tmp_path) as fake:
        with pytest.raises(VppUnsupportedRelease) as err:
            Vpp.connect(fake.api_socket)
        eventually("the refused connection closed", lambda: fake.client_count == 0)
    e = err.value
    assert (e.closest, e.supported) == ("26.06", ("26.06",))
    assert {(m.message, m.ours, m.vpp) for m in e.mismatches} == {
        ("app_namespace_add_del_v4", "0x42c1d824", "0x0badc0de"),
        ("ip_address_details", "0xee29b797", None),
        ("ip_address_dump", "0x2d033de4", None),
    }
    text = str(e)
    assert text.startswith("VPP 26.06-release is not a release vppctl_py supports (26.06)")
    assert "app_namespace_add_del_v4 (26.06 0x42c1d824, this VPP 0x0badc0de)" in text
    assert "ip_address_dump (26.06 0x2d033de4, this VPP has no such message)" in text


def test_vppctl_cli_reports_the_skew_in_one_line(vpp_fixtures: Path, tmp_path: Path) -> None:
    docs = with_crc(recorded_docs(vpp_fixtures), "show_version_reply", "0x00000001")
    with fake_speaking(docs, tmp_path) as fake:
        result = CliRunner().invoke(vppctl_cli, ["-s", fake.api_socket, "show", "version"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert "show_version_reply (26.06 0xc919bde1, this VPP 0x00000001)" in lines[0]


def test_vpp_without_get_api_json(vpp_fixtures: Path, tmp_path: Path) -> None:
    leave_out = ("get_api_json", "get_api_json_reply")
    with fake_speaking(recorded_docs(vpp_fixtures), tmp_path, leave_out=leave_out) as fake, \
            pytest.raises(VppApiDefinitionsError) as err:  # fmt: skip
        Vpp.connect(fake.api_socket)
    assert "does not offer get_api_json" in str(err.value)
    assert "--api-dir / VPP_API_DIR" in str(err.value)


def test_shipped_crcs_match_the_recorded_vpp(vpp_fixtures: Path) -> None:
    """The recorder wrote both from one VPP: its message table has every shipped CRC, and
    so do the recorded definitions (memclnt's messages come from vpp-papi, not VPP)."""
    (release,) = supported()
    table = json.loads((vpp_fixtures / "message-table.json").read_text())
    assert differences(release, [key for _, key in table]) == ()
    by_name = {m[0]: m[-1]["crc"] for d in recorded_docs(vpp_fixtures) for m in d["messages"]}
    served = {n: c for n, c in release.crcs.items() if n in by_name}
    assert served == {n: by_name[n] for n in served} and len(served) >= len(release.crcs) - 2


def test_match_picks_the_release_that_fits() -> None:
    old = Release("25.10", "v25.10", {"a": "0x1", "b": "0x2"})
    new = Release("26.06", "v26.06", {"a": "0x1", "b": "0x3"})
    assert match_release(["a_1", "b_3", "c_9"], "v26.06", (old, new)) is new
    assert match_release(["a_1", "b_2"], "v25.10", (old, new)) is old
    with pytest.raises(VppUnsupportedRelease) as err:
        match_release(["a_2", "b_3"], "v27.02", (old, new))
    assert err.value.closest == "26.06"  # one message off, against two for 25.10
    assert [m.message for m in err.value.mismatches] == ["a"]
