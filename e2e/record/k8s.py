"""Records tests/fixtures/k8s from a real kube-apiserver: the AdmissionReviews a mutating
webhook receives and the pod list/watch bodies a node agent reads.

    python3 -m e2e.record.k8s --kubeconfig admin.kubeconfig --out tests/fixtures/k8s

The cluster needs a kube-apiserver that can reach https://127.0.0.1 (the recorder's own
webhook listens there) and a kube-controller-manager (ServiceAccount and ReplicaSet
controllers), no kubelet or scheduler. Everything the recorder creates is removed at the
end, also when a step fails, and nothing is written unless every step succeeded.
Exit codes: 0 recorded; 1 a step failed or the cluster is unusable; 2 bad command line.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from e2e.record.k8s_http import WAIT, AdmissionReceiver, RawWatch, RecordError
from injector.kube.client import KubeConfigError, api_client

# The scenario keeps the names of the first captures: tests pin some of them, and the
# ReplicaSet's pod-template-hash only stays the same while the template does.
NAMESPACE = "vcl-demo"
NODE = "node-a"  # a Node API object only: no kubelet runs for it
SELECTOR = f"spec.nodeName={NODE}"  # what the agent lists and watches with
DEPLOYMENT = "demo-deploy"
IMAGE = "docker.io/library/nginx:1.25"  # never pulled: nothing runs containers
INJECTION_LABEL = {"vcl-injection": "enabled"}  # the namespace opt-in the webhook selects on
WEBHOOK = "vcl-record"  # the MutatingWebhookConfiguration's name
MANAGER = "vcl-record"  # fieldManager of every write, so managedFields name the recorder
PROBE = "vcl-record-probe"  # dry-run pod: once the webhook sees it, registration is live
SCRATCH = "vcl-record-scratch"  # pod whose status writes age the watch cache, if need be
AGING_BATCH = 20  # status writes between two looks at the watch cache
# What the recorder writes as kubelet would (no kubelet runs): documentation addresses.
POD_IP, HOST_IP = "10.244.1.5", "192.0.2.10"
KUBELET_STATUS = "status patch as kubelet: phase Running, podIP/podIPs, hostIP, Ready"
KUBELET_DELETE = "final delete with gracePeriodSeconds 0, as kubelet once containers stop"
# The files, in the order the scenario makes them, with index.json's line about each.
WHAT = {
    "admission-review-pod-create.json": "CREATE of a bare Pod demo-bare",
    "admission-review-pod-dryrun.json": "server dry-run CREATE of Pod demo-dryrun (nothing stored)",
    "admission-review-pod-from-replicaset.json": f"CREATE by the ReplicaSet controller for Deployment {DEPLOYMENT}: generateName only",
    "admission-review-pod-create-nodename.json": f"CREATE of Pod demo-on-node-a with spec.nodeName {NODE}",
    "admission-review-pod-update.json": "UPDATE of demo-on-node-a (annotation added): object and oldObject",
    "pods-list.json": f"GET /api/v1/pods?fieldSelector={SELECTOR}: the PodList (demo-on-node-a, annotated)",
    "pods-watch.jsonl": f"watch ({SELECTOR}) from the list's resourceVersion while demo-watch is created, annotated, status-patched, deleted, force-deleted",
    "pods-watch-gone.jsonl": f"watch ({SELECTOR}) from resourceVersion=1, older than the watch cache",
}
ADMISSION = list(WHAT)[:5]


@dataclass(frozen=True)
class Capture:
    """One fixture file: its bytes and what index.json says about it."""

    name: str
    body: bytes
    what: str
    synthetic: tuple[str, ...] = ()


def pretty(raw: bytes) -> bytes:
    """JSON as the server sent it, indented: same keys, same order."""
    return json.dumps(json.loads(raw), indent=2, ensure_ascii=False).encode() + b"\n"


def until(what: str, check: Callable[[], Any], *, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise RecordError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)
    return result


# --- the cluster side -------------------------------------------------------------------


def pod(name: str, *, node: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [{"name": "app", "image": IMAGE, "ports": [{"containerPort": 80}]}]
    }
    if node:
        spec["nodeName"] = node  # bound at creation, as if already scheduled
    meta = {"name": name, "labels": {"app": NAMESPACE}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def deployment() -> dict[str, Any]:
    """What `kubectl create deployment demo-deploy --image=IMAGE` sends."""
    labels = {"app": DEPLOYMENT}
    template = {
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "nginx", "image": IMAGE}]},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": DEPLOYMENT, "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": template},
    }


def webhook_configuration(receiver: AdmissionReceiver) -> dict[str, Any]:
    rule = {
        "operations": ["CREATE", "UPDATE"],
        "apiGroups": [""],
        "apiVersions": ["v1"],
        "resources": ["pods"],
        "scope": "Namespaced",
    }
    hook = {
        "name": "pods.record.vcl-injector.example",
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "failurePolicy": "Fail",
        "reinvocationPolicy": "Never",
        "timeoutSeconds": 10,
        "clientConfig": {"url": receiver.url, "caBundle": receiver.bundle.ca_bundle},
        "namespaceSelector": {"matchLabels": INJECTION_LABEL},
        "rules": [rule],
    }
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": WEBHOOK},
        "webhooks": [hook],
    }


def missing(call: Callable[[], Any]) -> bool:
    """Runs `call`; True when the API server answered 404."""
    try:
        call()
    except ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


class Lab:
    """The recorder's objects in the cluster; each creation registers its removal."""

    def __init__(self, api: Any, undo: contextlib.ExitStack) -> None:
        # Any: the client's models would re-type our plain JSON bodies (see injector.kube).
        self.core: Any = client.CoreV1Api(api)
        self.apps: Any = client.AppsV1Api(api)
        self.admission: Any = client.AdmissionregistrationV1Api(api)
        self.undo = undo

    def _create(self, what: str, create: Callable[[], Any]) -> Any:
        try:
            return create()
        except ApiException as exc:
            if exc.status == 409:
                raise RecordError(
                    f"{what} already exists: the recorder only removes what it made, "
                    "so delete it first"
                ) from exc
            raise

    def node(self) -> None:
        body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE}}
        self._create(f"node {NODE}", lambda: self.core.create_node(body, field_manager=MANAGER))
        self.undo.callback(missing, lambda: self.core.delete_node(NODE))

    def namespace(self) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": NAMESPACE, "labels": INJECTION_LABEL},
        }
        self._create(
            f"namespace {NAMESPACE}",
            lambda: self.core.create_namespace(body, field_manager=MANAGER),
        )
        self.undo.callback(self._remove_namespace)
        # The ServiceAccount admission plugin refuses pods until this account exists.
        until(
            "the namespace's default ServiceAccount (kube-controller-manager)",
            lambda: (
                not missing(lambda: self.core.read_namespaced_service_account("default", NAMESPACE))
            ),
        )

    def _remove_namespace(self) -> None:
        missing(lambda: self.core.delete_namespace(NAMESPACE))
        # Pods bound to NODE would wait forever for a kubelet to confirm their graceful
        # deletion, and the namespace with them: force them, as kubelet would.
        for item in self.core.list_namespaced_pod(NAMESPACE, field_selector=SELECTOR).items:
            missing(
                partial(
                    self.core.delete_namespaced_pod,
                    item.metadata.name,
                    NAMESPACE,
                    grace_period_seconds=0,
                )
            )
        try:
            until(
                f"namespace {NAMESPACE} to be gone",
                lambda: missing(lambda: self.core.read_namespace(NAMESPACE)),
                timeout=2 * WAIT,
            )
        except RecordError as exc:  # the recording stands; the next run will say so
            typer.echo(f"record k8s: warning: {exc}", err=True)

    def webhook(self, receiver: AdmissionReceiver) -> None:
        body = webhook_configuration(receiver)
        create = self.admission.create_mutating_webhook_configuration
        self._create(
            f"MutatingWebhookConfiguration {WEBHOOK}", lambda: create(body, field_manager=MANAGER)
        )
        self.undo.callback(
            missing, lambda: self.admission.delete_mutating_webhook_configuration(WEBHOOK)
        )

        # The apiserver picks the configuration up from an informer, a moment later.
        def probed() -> bool:
            self.create_pod(pod(PROBE), dry_run=True)
            return any(json.loads(b)["request"].get("name") == PROBE for b in receiver.bodies)

        until("the apiserver to call the webhook", probed)

    def create_pod(self, body: dict[str, Any], *, dry_run: bool = False) -> Any:
        return self.core.create_namespaced_pod(
            NAMESPACE,
            body,
            field_manager=MANAGER,
            field_validation="Strict",
            dry_run="All" if dry_run else None,
        )

    def create_deployment(self) -> None:
        self.apps.create_namespaced_deployment(
            NAMESPACE, deployment(), field_manager=MANAGER, field_validation="Strict"
        )

    def annotate(self, name: str, annotations: dict[str, str]) -> None:
        self.core.patch_namespaced_pod(
            name,
            NAMESPACE,
            {"metadata": {"annotations": annotations}},
            field_manager=MANAGER,
            _content_type="application/merge-patch+json",  # what kubectl annotate sends
        )

    def set_status_message(self, name: str, message: str) -> None:
        self.core.patch_namespaced_pod_status(
            name,
            NAMESPACE,
            {"status": {"message": message}},
            field_manager=MANAGER,
            _content_type="application/merge-patch+json",
        )

    def play_kubelet_status(self, name: str) -> None:
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        status = {
            "phase": "Running",
            "hostIP": HOST_IP,
            "podIP": POD_IP,
            "podIPs": [{"ip": POD_IP}],
            "startTime": now,
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}],
        }
        self.core.patch_namespaced_pod_status(
            name,
            NAMESPACE,
            {"status": status},
            field_manager=MANAGER,
            _content_type="application/strategic-merge-patch+json",  # as kubelet patches
        )


# --- the recording ----------------------------------------------------------------------


def record_admission(lab: Lab, receiver: AdmissionReceiver) -> list[Capture]:
    def request(op: str, name: str, *, dry_run: bool = False) -> Callable[[dict[str, Any]], bool]:
        return lambda r: (r["operation"], r.get("name"), r["dryRun"]) == (op, name, dry_run)

    lab.create_pod(pod("demo-bare"))
    create = receiver.wait_for("the CREATE of demo-bare", request("CREATE", "demo-bare"))
    lab.create_pod(pod("demo-dryrun"), dry_run=True)
    dryrun = receiver.wait_for("the dry-run CREATE", request("CREATE", "demo-dryrun", dry_run=True))
    lab.create_deployment()
    from_rs = receiver.wait_for(
        "the ReplicaSet controller's pod",
        lambda r: r["object"]["metadata"].get("generateName", "").startswith(f"{DEPLOYMENT}-"),
    )
    lab.create_pod(pod("demo-on-node-a", node=NODE))
    on_node = receiver.wait_for("the CREATE with nodeName", request("CREATE", "demo-on-node-a"))
    # Of this pod, not demo-bare: a lab scheduler and kubelet would change demo-bare
    # between its CREATE and the UPDATE, and the capture with it; no kubelet runs for NODE.
    lab.annotate("demo-on-node-a", {"example.com/touched": "yes"})
    update = receiver.wait_for("the UPDATE", request("UPDATE", "demo-on-node-a"))
    bodies = (create, dryrun, from_rs, on_node, update)
    return [
        Capture(name, pretty(body), WHAT[name])
        for name, body in zip(ADMISSION, bodies, strict=True)
    ]


def record_list_and_watch(lab: Lab) -> list[Capture]:
    listed = lab.core.list_pod_for_all_namespaces(field_selector=SELECTOR, _preload_content=False)
    body = listed.data
    version = json.loads(body)["metadata"]["resourceVersion"]
    stream = lab.core.list_pod_for_all_namespaces(
        field_selector=SELECTOR,
        watch=True,
        resource_version=version,
        timeout_seconds=int(4 * WAIT),
        _preload_content=False,
    )
    watch = RawWatch(stream)
    lab.create_pod(pod("demo-watch", node=NODE))
    watch.wait_for(1, "ADDED")
    lab.annotate("demo-watch", {"vcl.example/agent-seen": "true"})
    watch.wait_for(2, "MODIFIED")
    lab.play_kubelet_status("demo-watch")
    watch.wait_for(3, "MODIFIED")
    lab.core.delete_namespaced_pod("demo-watch", NAMESPACE)  # the pod's own 30 s grace
    watch.wait_for(4, "MODIFIED")
    lab.core.delete_namespaced_pod("demo-watch", NAMESPACE, grace_period_seconds=0)
    until("the watch to deliver DELETED", lambda: watch.ended)
    events = watch.events()
    if events[-1]["type"] != "DELETED":
        raise RecordError(f"the watch ended before DELETED: {[e['type'] for e in events]}")
    raw = bytes(watch.body[: watch.body.rfind(b"\n") + 1])
    kinds = ", ".join(e["type"] for e in events)
    return [
        Capture("pods-list.json", pretty(body), WHAT["pods-list.json"]),
        Capture(
            "pods-watch.jsonl",
            raw,
            f"{WHAT['pods-watch.jsonl']}: {kinds}",
            (KUBELET_STATUS, KUBELET_DELETE),
        ),
    ]


def watch_from_version_one(lab: Lab) -> tuple[int, bytes]:
    try:
        response = lab.core.list_pod_for_all_namespaces(
            field_selector=SELECTOR,
            watch=True,
            resource_version="1",
            timeout_seconds=2,  # ends the stream when the server replays instead
            _preload_content=False,
        )
        return int(response.status), bytes(response.read())
    except ApiException as exc:  # recorded all the same: the point is what the server does
        body = exc.body or b""
        return int(exc.status), body if isinstance(body, bytes) else str(body).encode()


def expired(body: bytes) -> bool:
    first = body.split(b"\n", 1)[0].strip()
    event = json.loads(first) if first else {}
    return event.get("type") == "ERROR" and event["object"].get("code") == 410


def summary(line: dict[str, Any]) -> str:
    """ "ERROR Expired 410" for a watch event, "None Expired 410" for a bare Status."""
    obj = line.get("object", line)
    return " ".join(str(x) for x in (line.get("type"), obj.get("reason"), obj.get("code")))


def record_watch_gone(lab: Lab) -> Capture:
    """A watch from resourceVersion 1, once 1 is older than the pods watch cache.

    An apiserver first started on an empty etcd (v1.28.0) fills its pods watch cache from
    about resourceVersion 1, so 1 is not too old: it replays the cache. Then the recorder
    writes status updates of a scratch pod until the cache (100 events, doubling while
    its oldest event is under 75 s old) has dropped the first versions.
    """
    writes = 0
    deadline = time.monotonic() + 5 * WAIT
    status, body = watch_from_version_one(lab)
    while status == 200 and not expired(body) and time.monotonic() < deadline:
        if writes == 0:
            lab.create_pod(pod(SCRATCH, node=NODE))
        for _ in range(AGING_BATCH):
            writes += 1
            lab.set_status_message(SCRATCH, f"ageing the watch cache: write {writes}")
        time.sleep(1)
        status, body = watch_from_version_one(lab)
    lines = [json.loads(line) for line in body.splitlines() if line.strip()]
    said = "; ".join(summary(line) for line in lines[:3])
    what = f"{WHAT['pods-watch-gone.jsonl']}: HTTP {status}, {len(lines)} line(s): {said}"
    if writes:
        what += f" (after {writes} status writes of a scratch pod aged the cache)"
    return Capture("pods-watch-gone.jsonl", body, what)


def record(api: Any) -> tuple[list[Capture], str]:
    version = str(client.VersionApi(api).get_code().git_version)
    with AdmissionReceiver() as receiver, contextlib.ExitStack() as undo:
        lab = Lab(api, undo)  # removed in reverse: webhook, namespace (and pods), node
        lab.node()
        lab.namespace()
        lab.webhook(receiver)
        captures = record_admission(lab, receiver)
        captures += record_list_and_watch(lab)
        captures.append(record_watch_gone(lab))
    return captures, version


# --- writing ----------------------------------------------------------------------------


def credentials(kubeconfig: Path) -> list[bytes]:
    """The secret strings of the kubeconfig's users, none of which may be recorded."""
    doc = yaml.safe_load(kubeconfig.read_text()) or {}
    keys = ("token", "client-key-data", "client-certificate-data", "password")
    found = [
        str(entry["user"][key]).encode()
        for entry in doc.get("users") or []
        for key in keys
        if isinstance(entry.get("user"), dict) and entry["user"].get(key)
    ]
    return [s for s in found if len(s) >= 8]


SECRET_SHAPES = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.eyJ|-----BEGIN [A-Z ]*PRIVATE KEY")


def write(out: Path, captures: list[Capture], *, version: str, kubeconfig: Path) -> None:
    secrets = credentials(kubeconfig)
    for capture in captures:
        if SECRET_SHAPES.search(capture.body) or any(s in capture.body for s in secrets):
            raise RecordError(f"{capture.name} would contain a credential: nothing written")
    out.mkdir(parents=True, exist_ok=True)
    recorded = datetime.datetime.now(datetime.UTC).date().isoformat()
    index = {}
    for capture in sorted(captures, key=lambda c: c.name):
        (out / capture.name).write_bytes(capture.body)
        index[capture.name] = {
            "kubernetes": version,
            "recorded": recorded,
            "what": capture.what,
            "synthetic": list(capture.synthetic),
        }
    (out / "index.json").write_text(json.dumps(index, indent=2) + "\n")


app = typer.Typer(add_completion=False, help=__doc__)


@app.command(help=__doc__)
def main(
    kubeconfig: Annotated[Path, typer.Option(help="An admin kubeconfig of the cluster.")],
    out: Annotated[Path, typer.Option(help="Where the fixture files go.")] = Path(
        "tests/fixtures/k8s"
    ),
) -> None:
    try:
        captures, version = record(api_client(str(kubeconfig)))
        write(out, captures, version=version, kubeconfig=kubeconfig)
    except (RecordError, KubeConfigError, ApiException) as exc:
        typer.echo(f"record k8s: error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{len(captures)} files from Kubernetes {version} written to {out}")


if __name__ == "__main__":
    app()
