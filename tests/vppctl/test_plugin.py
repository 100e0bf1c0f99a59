"""The pytest plugin other test suites use (vppctl_py.testing.pytest_plugin): a FakeVpp
with a generated message table, and a client connected to it."""

from __future__ import annotations

from vppctl_py import Vpp
from vppctl_py.testing import FakeVpp

pytest_plugins = ["vppctl_py.testing.pytest_plugin"]


def test_fixtures_work_with_a_generated_message_table(
    fake_vpp: FakeVpp, fake_vpp_client: Vpp
) -> None:
    # Every message of the served definitions gets an id, the handshake at papi's.
    names = {key.rpartition("_")[0]: index for index, key in fake_vpp.codec.table}
    assert names.keys() == fake_vpp.codec.messages.keys()
    assert (names["sockclnt_create"], names["sockclnt_create_reply"]) == (15, 16)
    index = fake_vpp_client.add_app_namespace("pod", 1, "abstract:pod")
    assert [n.index for n in fake_vpp_client.app_namespaces()] == [0, index]
    assert fake_vpp.namespace_ids() == ["default", "pod"]
