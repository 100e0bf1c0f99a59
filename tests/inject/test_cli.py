"""vcl-inject on the command line: input forms, output formats, options, and errors that
name the document and field with nothing printed on stdout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from injector.cli.inject import app

REPO = Path(__file__).resolve().parents[2]
POD = """apiVersion: v1
kind: Pod
metadata: {name: p, namespace: demo}
spec:
  containers: [{name: app, image: example/app:1}]
"""


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def status_of(obj: dict[str, object]) -> dict[str, object]:
    meta = obj["metadata"]
    assert isinstance(meta, dict)
    return json.loads(meta["annotations"]["vcl.io/status"])  # type: ignore[no-any-return]


def test_stdin_and_json_output() -> None:
    code, out, _ = run("-f", "-", "-o", "json", stdin=POD)
    assert code == 0
    pod = json.loads(out)
    assert pod["kind"] == "Pod"
    assert status_of(pod)["containers"] == ["app"]


def test_json_output_of_several_documents_is_a_list() -> None:
    code, out, _ = run(
        "-f", "-", "-o", "json", stdin=POD + "---\n" + POD.replace("name: p", "name: q")
    )
    assert code == 0
    body = json.loads(out)
    assert body["kind"] == "List" and [i["metadata"]["name"] for i in body["items"]] == ["p", "q"]


def test_dataplane_option_sets_the_default_and_the_annotation_still_wins() -> None:
    code, out, _ = run("-f", "-", "--dataplane", "pod", stdin=POD)
    assert code == 0 and status_of(yaml.safe_load(out))["dataplane"] == "pod"
    annotated = POD.replace(
        "namespace: demo}", "namespace: demo, annotations: {vcl.io/dataplane: node}}"
    )
    code, out, _ = run("-f", "-", "--dataplane", "pod", stdin=annotated)
    assert code == 0 and status_of(yaml.safe_load(out))["dataplane"] == "node"


def test_config_file_changes_images_and_defaults(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("runtime: {image: registry.local/vcl:1}\ndefaults: {eventfd: false}\n")
    code, out, _ = run("-f", "-", "--config", str(config), stdin=POD)
    pod = yaml.safe_load(out)
    assert code == 0
    assert pod["spec"]["initContainers"][0]["image"] == "registry.local/vcl:1"
    assert status_of(pod)["settings"]["eventfd"] is False  # type: ignore[index]


def test_skipped_templates_are_reported_on_stderr_only() -> None:
    optout = POD.replace(
        "namespace: demo}", "namespace: demo, annotations: {vcl.io/inject: 'false'}}"
    )
    code, out, err = run("-f", "-", stdin=optout)
    assert code == 0
    assert yaml.safe_load(out) == yaml.safe_load(optout)
    assert "skipped" in err and "opts out" in err


@pytest.mark.parametrize(
    ("stdin", "says"),
    [
        ("kind: Pod\nspec: [\n", "document 1: not valid YAML at line"),
        (
            POD + "---\nkind: Pod\nmetadata: {name: empty}\nspec: {containers: []}\n",
            "document 2 (Pod empty): spec.containers: the pod has no containers",
        ),
        (
            "kind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec: {containers: []}\n",
            "document 1 (Deployment d): spec.template.spec.containers: the pod has no containers",
        ),
        (
            "kind: Deployment\nmetadata: {name: d}\nspec: {}\n",
            "document 1 (Deployment d): spec.template: missing pod template",
        ),
        (
            POD.replace(
                "namespace: demo}", "namespace: demo, annotations: {vcl.io/rx-fifo-size: 4MB}}"
            ),
            "annotation vcl.io/rx-fifo-size='4MB' is invalid",
        ),
        (
            POD.replace(
                "namespace: demo}", "namespace: demo, annotations: {vcl.io/containers: nope}}"
            ),
            "vcl.io/containers names nope, which is not a container of the pod (containers: app)",
        ),
        (
            POD.replace(
                "[{name: app, image: example/app:1}]",
                "[{name: app, volumeMounts: [{name: x, mountPath: /etc/vcl}]}]",
            ),
            "container app: volumeMount 'x' already uses /etc/vcl",
        ),
        (
            POD.replace("spec:\n", "spec:\n  volumes: [{name: vcl-lib, emptyDir: {}}]\n"),
            "already has a volume named 'vcl-lib'",
        ),
        (
            POD.replace(
                "namespace: demo}", "namespace: demo, annotations: {vcl.io/status: garbage}}"
            ),
            "vcl.io/status is not a status written by this vcl-injector",
        ),
    ],
)
def test_invalid_input_fails_with_a_located_message_and_no_output(stdin: str, says: str) -> None:
    code, out, err = run("-f", "-", stdin=stdin)
    assert code == 1
    assert out == ""
    assert says in err, err


def test_missing_file_and_bad_config_have_their_exit_codes(tmp_path: Path) -> None:
    code, out, err = run("-f", str(tmp_path / "nope.yaml"))
    assert (code, out) == (1, "") and "cannot read" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("hostRoot: relative/path\nunknownKey: 1\n")
    code, out, err = run("-f", "-", "--config", str(bad), stdin=POD)
    assert (code, out) == (3, "")
    assert "hostRoot" in err and "unknownKey" in err


def test_installed_console_script_runs_the_bundled_sample() -> None:
    """The README's first command, as a user runs it."""
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from injector.cli.inject import main; main()",
            "-f",
            str(REPO / "examples" / "app.yaml"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    docs = list(yaml.safe_load_all(proc.stdout))
    assert [d["kind"] for d in docs] == ["Deployment", "Job", "Service"]
    deploy = docs[0]["spec"]["template"]
    assert status_of(deploy)["containers"] == ["istio-proxy"]


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (
            "{containers: [{name: a, env: [{name: X, value: 5}]}]}",
            "spec.containers[0].env[0].value",
        ),
        ("{containers: [{name: a, env: [7]}]}", "spec.containers[0].env[0]"),
        ("{containers: [{name: a, volumeMounts: {}}]}", "spec.containers[0].volumeMounts"),
        ("{containers: [{image: x}]}", "spec.containers[0]: expected an object with a name"),
        ("{containers: [{name: a}], initContainers: {}}", "spec.initContainers"),
        ("{containers: [{name: a}], affinity: {nodeAffinity: []}}", "spec.affinity.nodeAffinity"),
        ("{containers: [{name: a}], readinessGates: {}}", "spec.readinessGates"),
    ],
)
def test_malformed_pod_fields_are_named(spec: str, field: str) -> None:
    code, out, err = run("-f", "-", stdin=f"kind: Pod\nmetadata: {{name: m}}\nspec: {spec}\n")
    assert (code, out) == (1, "")
    assert field in err, err


def test_status_annotation_with_wrong_types_is_refused_not_crashed() -> None:
    bad = '{"version":1,"initContainers":5}'
    code, out, err = run(
        "-f",
        "-",
        stdin=POD.replace(
            "namespace: demo}", f"namespace: demo, annotations: {{vcl.io/status: '{bad}'}}}}"
        ),
    )
    assert (code, out) == (1, "") and "vcl.io/status" in err


def test_yaml_aliases_are_not_changed_through_each_other() -> None:
    """Two containers sharing one env list through a YAML anchor: injecting one of them
    must not change the other (the input is copied without shared references)."""
    manifest = """kind: Pod
metadata: {name: shared, annotations: {vcl.io/containers: a}}
spec:
  containers:
    - {name: a, env: &common [{name: MODE, value: x}]}
    - {name: b, env: *common}
"""
    code, out, err = run("-f", "-", stdin=manifest)
    assert code == 0, err
    a, b = yaml.safe_load(out)["spec"]["containers"]
    assert any(e["name"] == "LD_PRELOAD" for e in a["env"])
    assert b["env"] == [{"name": "MODE", "value": "x"}]
