"""Random sequences of pod creates, pod deletes and VPP restarts (hypothesis stateful
test, 200 sequences): after each reconcile, VPP's vcl- namespaces are exactly the live
injected pods, each with its socket and a vcl.conf, and no directory is left over."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from injected_pods import injected_pod

from injector.agent.apply import Applier
from injector.agent.hostfiles import HostFiles
from injector.agent.plan import plan
from injector.agent.registration import desired
from vppctl_py import Vpp, VppDisconnected
from vppctl_py.testing import FakeVpp, load_message_table

TABLE = load_message_table(Path(__file__).resolve().parents[1] / "fixtures/vpp/message-table.json")


class AgentMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="vcls", dir="/tmp"))
        (self.dir / "vpp").mkdir()
        self.root = self.dir / "r"
        self.fake = FakeVpp(self.dir / "vpp", message_table=TABLE).start()
        self.vpp = Vpp.connect(self.fake.api_socket, timeout=5.0)
        self.applier = Applier(self.vpp, HostFiles(str(self.root)))
        self.pods: dict[str, dict[str, Any]] = {}
        self.count = 0

    def teardown(self) -> None:
        self.vpp.close()
        self.fake.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def reconcile(self) -> None:
        wanted, _ = desired(self.pods.values(), str(self.root))
        try:
            results = self.applier.apply(plan(wanted, self.applier.observe()))
        except VppDisconnected:
            self.vpp.reconnect()
            results = self.applier.apply(plan(wanted, self.applier.observe()))
        assert all(r.ok for r in results), results
        assert plan(wanted, self.applier.observe()) == []

    @rule(n=st.integers(min_value=1, max_value=3))
    def create(self, n: int) -> None:
        for _ in range(n):
            self.count += 1
            pod = injected_pod(f"p{self.count}")
            self.pods[pod["metadata"]["uid"]] = pod
        self.reconcile()

    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        if self.pods:
            # An index, not a uid: uids are random, and hypothesis must replay the choice.
            index = data.draw(st.integers(min_value=0, max_value=len(self.pods) - 1))
            del self.pods[list(self.pods)[index]]
        self.reconcile()

    @rule()
    def vpp_restarts(self) -> None:
        self.fake.restart()
        self.reconcile()

    @rule()
    def agent_restarts(self) -> None:
        """A new agent process: nothing in memory, only VPP and the host files."""
        self.vpp.close()
        self.vpp = Vpp.connect(self.fake.api_socket, timeout=5.0)
        self.applier = Applier(self.vpp, HostFiles(str(self.root)))
        self.reconcile()

    @invariant()
    def vpp_matches_live_pods(self) -> None:
        ids = {ns.ns_id for ns in self.vpp.app_namespaces() if ns.ns_id.startswith("vcl-")}
        assert ids == {f"vcl-{uid}" for uid in self.pods}
        on_disk = (
            {p.name for p in (self.root / "pods").iterdir()}
            if (self.root / "pods").exists()
            else set()
        )
        assert on_disk == set(self.pods)
        for uid in self.pods:
            assert (self.root / "pods" / uid / "app.sock").exists()
            assert (self.root / "pods" / uid / "vcl.conf").exists()


AgentMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=8, deadline=None)
TestAgentSequences = AgentMachine.TestCase
