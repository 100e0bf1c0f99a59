"""Test doubles for VPP: FakeVpp speaks VPP's real socket protocol to the real vpp-papi."""

from vppctl_py.testing.server import FakeVpp
from vppctl_py.testing.state import HeapModel
from vppctl_py.testing.wire import load_message_table

__all__ = ["FakeVpp", "HeapModel", "load_message_table"]
