"""The agent's and vcl-status's command lines: clear start-up errors with their exit codes
(no Kubernetes credentials, a root whose socket names would be too long, calico-vpp mode
without a usable CRI socket), and vcl-status against the Kubernetes API double: table/json output, exit
1 for an unhealthy pod, 3 when the API server cannot be read; `kubectl vcl status`
run through kubectl itself."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from injected_pods import injected_pod
from kube_double import KubeDouble
from typer.testing import CliRunner

from injector.cli.agent import app as agent_app
from injector.cli.status import app as status_app


def test_agent_without_credentials_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    result = CliRunner().invoke(
        agent_app, ["--node", "n", "--root", "/tmp/vcl-t", "--kubeconfig", str(tmp_path / "none")]
    )
    assert result.exit_code == 1
    assert "no Kubernetes credentials" in result.stderr and str(tmp_path / "none") in result.stderr


def test_agent_refuses_a_root_too_long_for_socket_names(tmp_path: Path) -> None:
    result = CliRunner().invoke(agent_app, ["--node", "n", "--root", "/" + "r" * 80])
    assert result.exit_code == 2
    assert "unix socket name holds at most 107" in result.stderr


def test_agent_in_calico_vpp_mode_needs_the_cri_socket(tmp_path: Path) -> None:
    args = ["--node", "n", "--root", "/tmp/vcl-t", "--network", "calico-vpp"]
    missing = str(tmp_path / "containerd.sock")
    result = CliRunner().invoke(agent_app, [*args, "--cri-endpoint", f"unix://{missing}"])
    assert result.exit_code == 1
    assert missing in result.stderr and "CONTAINER_RUNTIME_ENDPOINT" in result.stderr


def test_agent_in_calico_vpp_mode_says_when_the_runtime_does_not_answer(
    tmp_path: Path,
) -> None:
    with tempfile.TemporaryDirectory(prefix="cri", dir="/tmp") as tmp:
        dead = socket.socket(socket.AF_UNIX)  # bound, never accepting: CRI cannot answer
        dead.bind(f"{tmp}/cri.sock")
        args = ["--node", "n", "--root", "/tmp/vcl-t", "--network", "calico-vpp"]
        result = CliRunner().invoke(agent_app, [*args, "--cri-endpoint", f"{tmp}/cri.sock"])
        dead.close()
    assert result.exit_code == 1
    assert "ListPodSandbox failed" in result.stderr and f"{tmp}/cri.sock" in result.stderr


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Iterator[tuple[KubeDouble, Path]]:
    with KubeDouble() as kube:
        path = tmp_path / "kubeconfig"
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "t",
            "clusters": [{"name": "t", "cluster": {"server": kube.url}}],
            "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t"}}],
            "users": [{"name": "t", "user": {}}],
        }))  # fmt: skip
        yield kube, path


def test_status_json_and_exit_code_for_an_unhealthy_pod(
    kubeconfig: tuple[KubeDouble, Path],
) -> None:
    kube, path = kubeconfig
    kube.namespaces["demo"] = {"vcl-injection": "enabled"}
    kube.create_pod(injected_pod("web"))  # injected, but no agent answers for node-a
    result = CliRunner().invoke(status_app, ["-n", "demo", "-o", "json", "--kubeconfig", str(path)])
    assert result.exit_code == 1
    (row,) = json.loads(result.stdout)
    assert row["name"] == "web" and row["injected"] and not row["healthy"]
    assert "no vcl-agent pod on node node-a" in row["warnings"]


def test_status_table_for_a_healthy_namespace(kubeconfig: tuple[KubeDouble, Path]) -> None:
    kube, path = kubeconfig
    kube.create_pod(
        {
            "metadata": {"name": "plain", "namespace": "other"},
            "spec": {"nodeName": "node-a", "containers": [{"name": "a"}]},
        }
    )
    result = CliRunner().invoke(status_app, ["-n", "other", "--kubeconfig", str(path)])
    assert result.exit_code == 0, result.output
    assert "plain" in result.stdout and "not labelled" in result.stdout


def test_status_api_unreachable_is_exit_3(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "t",
        "clusters": [{"name": "t", "cluster": {"server": "http://127.0.0.1:9"}}],
        "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t"}}],
        "users": [{"name": "t", "user": {}}],
    }))  # fmt: skip
    result = CliRunner().invoke(status_app, ["-A", "--kubeconfig", str(path)])
    assert result.exit_code == 3 and "cannot reach the API server" in result.stderr


def test_kubectl_plugin_as_kubectl_runs_it(
    kubeconfig: tuple[KubeDouble, Path], tmp_path: Path
) -> None:
    """`kubectl vcl status -n NS`, through kubectl itself: kubectl finds kubectl-vcl on
    PATH and passes it the words after `vcl` (a plugin that took "status" for a pod name
    answered "pod status not found")."""
    kubectl = shutil.which("kubectl")
    plugin = shutil.which("kubectl-vcl")
    assert kubectl and plugin, "kubectl and the installed kubectl-vcl entry point"
    kube, path = kubeconfig
    kube.namespaces["demo"] = {"vcl-injection": "enabled"}
    kube.create_pod(injected_pod("web"))
    env = {**os.environ, "KUBECONFIG": str(path),
           "PATH": f"{Path(plugin).parent}{os.pathsep}{os.environ['PATH']}"}  # fmt: skip
    listed = subprocess.run([kubectl, "plugin", "list"], env=env, capture_output=True, text=True)
    assert "kubectl-vcl" in listed.stdout
    run = subprocess.run(
        [kubectl, "vcl", "status", "-n", "demo", "-o", "json"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 1, run.stderr  # the pod is unhealthy: no agent answers
    (row,) = json.loads(run.stdout)
    assert (row["namespace"], row["name"], row["injected"]) == ("demo", "web", True)
    one = subprocess.run([kubectl, "vcl", "status", "web", "-n", "demo", "-o", "json"],
                         env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert [r["name"] for r in json.loads(one.stdout)] == ["web"]
    helped = subprocess.run([kubectl, "vcl"], env=env, capture_output=True, text=True)
    assert "status" in helped.stdout
