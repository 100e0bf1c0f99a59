"""Security and wiring properties of the rendered manifests, in every overlay.

Covers:
- webhook pods: 2 replicas, preferred anti-affinity, a PDB that selects them, non-root,
  read-only root, no privilege escalation, all capabilities dropped, RuntimeDefault
  seccomp, no service account token, requests and limits, readiness /readyz and liveness
  /healthz over HTTPS on 8443, the documented command line, Service 443 -> 8443;
- the MutatingWebhookConfiguration: two entries, each evaluated against namespace and pod
  labels (a small label-selector evaluator): kube-system and vcl-system are never
  selected whatever their labels, labelled namespaces and labelled pods are, the pod
  label vcl.io/inject=false opts out; sideEffects None, reinvocation IfNeeded, 5 s
  timeout, v1 reviews, CREATE on pods only, failurePolicy Ignore;
- RBAC exactly as documented: the agent's ClusterRole verbs, the certs Job's Role and
  ClusterRole limited by resourceNames (create on Secrets apart, namespaced), no other
  Role or binding, nothing bound to the webhook's service account;
- host paths: only the vcl-vpp and vcl-agent pods mount any, and the VPP API socket
  directory (or a parent of it) nowhere else;
- the agent: NODE_NAME from the downward API, its command line per network mode, the VPP
  API socket under the directory it mounts, port 9464; the VPP DaemonSet only where it
  belongs (not in calico-vpp);
- NetworkPolicies: only 8443 open on the webhook, only 9464 on the agent;
- certificates: the certs Job's command line and service account (Job overlays), the
  cert-manager chain and the cainjector annotation (cert-manager overlay);
- the shipped injector config parses and equals the built-in defaults.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from injector.core.config import InjectorConfig, parse_config

OVERLAYS = ["adaptive", "calico-vpp", "cert-manager", "dedicated", "default"]
WITH_OUR_VPP = ["adaptive", "cert-manager", "dedicated", "default"]
WITH_CERTS_JOB = ["adaptive", "calico-vpp", "dedicated", "default"]
NEVER_INJECTED = ["kube-system", "kube-public", "kube-node-lease", "vcl-system"]
API_SOCKET_DIRS = {"/run/vpp", "/var/run/vpp"}

Objects = dict[str, list[dict[str, Any]]]


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def pod_specs(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for obj in objects:
        if obj["kind"] in ("Deployment", "DaemonSet", "StatefulSet", "Job"):
            yield obj["metadata"]["name"], obj["spec"]["template"]["spec"]
        elif obj["kind"] == "Pod":
            yield obj["metadata"]["name"], obj["spec"]


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Kubernetes LabelSelector semantics (matchLabels AND matchExpressions)."""
    if not selector:
        return True
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def hooks_called(
    objects: list[dict[str, Any]], ns_labels: dict[str, str], pod_labels: dict[str, str]
) -> list[str]:
    mwc = find(objects, "MutatingWebhookConfiguration", "vcl-injector")
    return [
        hook["name"]
        for hook in mwc["webhooks"]
        if selects(hook.get("namespaceSelector"), ns_labels)
        and selects(hook.get("objectSelector"), pod_labels)
    ]


def ns(name: str, **labels: str) -> dict[str, str]:
    # The API server sets kubernetes.io/metadata.name on every namespace.
    return {"kubernetes.io/metadata.name": name, **labels}


ENABLED = {"vcl-injection": "enabled"}


# --- the webhook's pods ----------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_webhook_pods_are_locked_down(overlays: Objects, overlay: str) -> None:
    deploy = find(overlays[overlay], "Deployment", "vcl-injector")
    spec = deploy["spec"]
    pod = spec["template"]["spec"]
    assert spec["replicas"] == 2
    anti = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert selects(
        anti[0]["podAffinityTerm"]["labelSelector"], spec["template"]["metadata"]["labels"]
    )
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sa = find(overlays[overlay], "ServiceAccount", pod["serviceAccountName"])
    assert sa["automountServiceAccountToken"] is False
    assert "hostNetwork" not in pod and "hostPID" not in pod
    for container in pod["containers"]:
        sc = container["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] != 0
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        assert {"cpu", "memory"} <= set(container["resources"]["limits"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_webhook_serves_and_is_probed_on_8443(overlays: Objects, overlay: str) -> None:
    deploy = find(overlays[overlay], "Deployment", "vcl-injector")
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"https": 8443}
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = container[probe]["httpGet"]
        assert (get["path"], get["scheme"], ports[get["port"]]) == (path, "HTTPS", 8443)
    assert container["args"] == [
        "vcl-injector",
        "serve",
        "--port=8443",
        "--tls-cert=/etc/vcl-injector/tls/tls.crt",
        "--tls-key=/etc/vcl-injector/tls/tls.key",
        "--config=/etc/vcl-injector/config/config.yaml",
        "--log-format=json",
    ]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in deploy["spec"]["template"]["spec"]["volumes"]}
    assert volumes[mounts["/etc/vcl-injector/tls"]]["secret"]["secretName"] == "vcl-injector-tls"
    assert volumes[mounts["/etc/vcl-injector/config"]]["configMap"]["name"] == "vcl-injector-config"
    assert all("subPath" not in m for m in container["volumeMounts"]), "subPath mounts never update"
    service = find(overlays[overlay], "Service", "vcl-injector")
    (port,) = service["spec"]["ports"]
    assert (port["port"], ports[port["targetPort"]]) == (443, 8443)
    assert service["spec"]["selector"] == deploy["spec"]["selector"]["matchLabels"]
    pdb = find(overlays[overlay], "PodDisruptionBudget", "vcl-injector")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"] == deploy["spec"]["selector"]


# --- which pods reach the webhook --------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("system", NEVER_INJECTED)
@pytest.mark.parametrize(
    "pod_labels",
    [{}, {"vcl.io/inject": "true"}, {"vcl.io/inject": "false"}],
    ids=["plain", "opt-in", "opt-out"],
)
@pytest.mark.parametrize(
    "ns_extra",
    [{}, ENABLED, {"vcl-injection": "disabled"}],
    ids=["unlabelled", "enabled", "disabled"],
)
def test_system_namespaces_are_never_selected(
    overlays: Objects,
    overlay: str,
    system: str,
    pod_labels: dict[str, str],
    ns_extra: dict[str, str],
) -> None:
    assert hooks_called(overlays[overlay], ns(system, **ns_extra), pod_labels) == []


@pytest.mark.parametrize(
    ("ns_labels", "pod_labels", "expected"),
    [
        (ns("demo", **ENABLED), {}, ["namespace.vcl.io"]),
        (ns("demo", **ENABLED), {"app": "web"}, ["namespace.vcl.io"]),
        (ns("demo", **ENABLED), {"vcl.io/inject": "true"}, ["namespace.vcl.io"]),  # once, not twice
        (ns("demo", **ENABLED), {"vcl.io/inject": "false"}, []),  # label opt-out
        (ns("demo"), {}, []),
        (ns("demo"), {"vcl.io/inject": "true"}, ["pod.vcl.io"]),  # a pod opts in alone: by LABEL
        (
            ns("demo", **{"vcl-injection": "disabled"}),
            {"vcl.io/inject": "true"},
            ["pod.vcl.io"],
        ),  # the pod wins
        (ns("demo", **{"vcl-injection": "disabled"}), {}, []),
    ],
)
def test_which_pods_reach_the_webhook(
    overlays: Objects, ns_labels: dict[str, str], pod_labels: dict[str, str], expected: list[str]
) -> None:
    assert hooks_called(overlays["default"], ns_labels, pod_labels) == expected


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_webhook_entries_settings(overlays: Objects, overlay: str) -> None:
    mwc = find(overlays[overlay], "MutatingWebhookConfiguration", "vcl-injector")
    assert [h["name"] for h in mwc["webhooks"]] == ["namespace.vcl.io", "pod.vcl.io"]
    for hook in mwc["webhooks"]:
        assert hook["sideEffects"] == "None"
        assert hook["reinvocationPolicy"] == "IfNeeded"
        assert hook["timeoutSeconds"] == 5
        assert hook["admissionReviewVersions"] == ["v1"]
        assert hook["failurePolicy"] == "Ignore"
        assert hook["rules"] == [
            {
                "operations": ["CREATE"],
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["pods"],
                "scope": "Namespaced",
            }
        ]
        assert hook["clientConfig"]["service"] == {
            "name": "vcl-injector",
            "namespace": "vcl-system",
            "path": "/mutate",
            "port": 443,
        }
        # By name, in the selector itself: no label on a system namespace can undo it.
        names = [
            e
            for e in hook["namespaceSelector"]["matchExpressions"]
            if e["key"] == "kubernetes.io/metadata.name"
        ]
        assert names == [
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": NEVER_INJECTED}
        ]


# --- RBAC ----------------------------------------------------------------------------------


def rules(role: dict[str, Any]) -> set[tuple[str, str, tuple[str, ...], str]]:
    """(apiGroup, resource, resourceNames, verb) for every combination a role grants."""
    return {
        (group, resource, tuple(rule.get("resourceNames", [])), verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


AGENT_RULES = {
    ("", "pods", (), "get"),
    ("", "pods", (), "list"),
    ("", "pods", (), "watch"),
    ("", "pods", (), "patch"),
    ("", "pods/status", (), "patch"),
    ("", "pods/eviction", (), "create"),
    ("", "events", (), "create"),
    ("", "events", (), "patch"),
    ("events.k8s.io", "events", (), "create"),
    ("events.k8s.io", "events", (), "patch"),
    ("", "nodes", (), "get"),
    ("", "nodes", (), "patch"),
}
# mode local only: the endpoint table leaves out pods that NetworkPolicies select
POLICY_RULES = {
    ("networking.k8s.io", "networkpolicies", (), "get"),
    ("networking.k8s.io", "networkpolicies", (), "list"),
    ("networking.k8s.io", "networkpolicies", (), "watch"),
}
TLS = ("vcl-injector-tls",)
CERTS_ROLE_RULES = {
    ("", "secrets", TLS, "get"),
    ("", "secrets", TLS, "update"),
    ("", "secrets", TLS, "patch"),
    # RBAC cannot limit create by name (docs/install.md); it is namespaced (a Role).
    ("", "secrets", (), "create"),
}
CERTS_CLUSTER_RULES = {
    ("admissionregistration.k8s.io", "mutatingwebhookconfigurations", ("vcl-injector",), "get"),
    ("admissionregistration.k8s.io", "mutatingwebhookconfigurations", ("vcl-injector",), "patch"),
}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rbac_is_exactly_what_is_documented(overlays: Objects, overlay: str) -> None:
    objects = overlays[overlay]
    roles = {
        (o["kind"], o["metadata"]["name"]): rules(o)
        for o in objects
        if o["kind"] in ("Role", "ClusterRole")
    }
    agent = AGENT_RULES if "calico" in overlay else AGENT_RULES | POLICY_RULES
    expected = {("ClusterRole", "vcl-agent"): agent}
    if overlay in WITH_CERTS_JOB:
        expected[("Role", "vcl-injector-certs")] = CERTS_ROLE_RULES
        expected[("ClusterRole", "vcl-injector-certs")] = CERTS_CLUSTER_RULES
    assert roles == expected
    bindings = [o for o in objects if o["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    for binding in bindings:
        role_kind = "Role" if binding["kind"] == "RoleBinding" else "ClusterRole"
        assert binding["roleRef"]["kind"] == role_kind
        assert (role_kind, binding["roleRef"]["name"]) in roles, "bound to a role we do not ship"
        assert [s["name"] for s in binding["subjects"]] == [binding["roleRef"]["name"]]
    subjects = {s["name"] for b in bindings for s in b["subjects"]}
    assert "vcl-injector" not in subjects, "the webhook needs no API access"


# --- host paths ----------------------------------------------------------------------------


def _covers(host_path: str, directory: str) -> bool:
    """Does mounting host_path expose directory (itself or a parent of it)?"""
    host_path = host_path.rstrip("/") or "/"
    return directory == host_path or directory.startswith(host_path.rstrip("/") + "/")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_host_paths_only_in_vpp_and_agent(overlays: Objects, overlay: str) -> None:
    for name, pod in pod_specs(overlays[overlay]):
        host_paths = [v["hostPath"]["path"] for v in pod.get("volumes", []) if "hostPath" in v]
        if name not in ("vcl-vpp", "vcl-agent"):
            assert host_paths == [], f"{name} mounts host paths {host_paths}"
            assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
            continue
        exposes_api = [p for p in host_paths for d in API_SOCKET_DIRS if _covers(p, d)]
        assert len(exposes_api) == 1, f"{name}: {host_paths}"
        # calico-vpp: only the agent also reads the CRI socket and the host's netns files.
        calico_agent = overlay == "calico-vpp" and name == "vcl-agent"
        extra = {"/run/containerd/containerd.sock", "/var/run/netns"} if calico_agent else set()
        assert set(host_paths) - set(exposes_api) == {"/var/run/vcl"} | extra


@pytest.mark.parametrize(
    ("host_path", "exposes"),
    [
        ("/run/vpp", True),
        ("/run", True),
        ("/", True),
        ("/var/run/vcl", False),
        ("/run/vpp2", False),
    ],
)
def test_host_path_cover_rule(host_path: str, exposes: bool) -> None:
    assert _covers(host_path, "/run/vpp") is exposes


# --- the agent and the node VPP ----------------------------------------------------------------


def _mounts(pod: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
    """mountPath -> host path, for hostPath volumes."""
    volumes = {v["name"]: v for v in pod["volumes"]}
    return {
        m["mountPath"]: volumes[m["name"]]["hostPath"]["path"]
        for m in container["volumeMounts"]
        if "hostPath" in volumes[m["name"]]
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_agent_wiring(overlays: Objects, overlay: str) -> None:
    ds = find(overlays[overlay], "DaemonSet", "vcl-agent")
    pod = ds["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["env"] == [
        {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}
    ]
    args = container["args"]
    assert args[0] == "vcl-agent"
    opts = dict(zip(args[1::2], args[2::2], strict=True))
    network = "calico-vpp" if overlay == "calico-vpp" else "local"
    assert opts == {
        "--node": "$(NODE_NAME)",
        "--vpp-api-socket": "/run/vpp/vpp-api.sock"
        if network == "calico-vpp"
        else "/run/vpp/api.sock",
        "--root": "/var/run/vcl",
        "--network": network,
        **({"--cri-endpoint": "unix:///run/cri/runtime.sock"} if network == "calico-vpp" else {}),
    }
    mounts = _mounts(pod, container)
    if network == "calico-vpp":
        # The pod's netns comes from the CRI, checked against the host's netns files;
        # both read-only, at paths the agent's flags and VPP's netns paths agree on.
        assert mounts["/run/cri/runtime.sock"] == "/run/containerd/containerd.sock"
        assert mounts["/var/run/netns"] == "/var/run/netns"
        ro = {m["mountPath"] for m in container["volumeMounts"] if m.get("readOnly")}
        assert {"/run/cri/runtime.sock", "/var/run/netns"} <= ro
    else:
        assert "/run/cri/runtime.sock" not in mounts and "/var/run/netns" not in mounts
    assert mounts["/var/run/vcl"] == "/var/run/vcl", "the per-pod root is at the host's path"
    assert mounts["/run/vpp"] == ("/var/run/vpp" if network == "calico-vpp" else "/run/vpp")
    assert [p["containerPort"] for p in container["ports"]] == [9464]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["serviceAccountName"] == "vcl-agent"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_our_vpp_only_where_it_belongs(overlays: Objects, overlay: str) -> None:
    names = {
        o["metadata"]["name"] for o in overlays[overlay] if o["kind"] in ("DaemonSet", "ConfigMap")
    }
    assert ({"vcl-vpp", "vcl-vpp-startup"} <= names) is (overlay in WITH_OUR_VPP)
    assert ({"vcl-vpp", "vcl-vpp-startup"} & names == set()) is (overlay not in WITH_OUR_VPP)


@pytest.mark.parametrize("overlay", WITH_OUR_VPP)
def test_vpp_and_agent_share_the_host_paths(overlays: Objects, overlay: str) -> None:
    vpp = find(overlays[overlay], "DaemonSet", "vcl-vpp")
    pod = vpp["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/vcl-injector/vcl-runtime:26.06"
    assert container["command"] == ["vpp", "-c", "/etc/vpp/startup.conf"]
    assert _mounts(pod, container) == {"/run/vpp": "/run/vpp", "/var/run/vcl": "/var/run/vcl"}
    assert pod["automountServiceAccountToken"] is False
    assert vpp["spec"]["updateStrategy"] == {"type": "OnDelete"}


# --- network policies ------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize(("name", "port"), [("vcl-injector", 8443), ("vcl-agent", 9464)])
def test_network_policy_opens_one_port(
    overlays: Objects, overlay: str, name: str, port: int
) -> None:
    policy = find(overlays[overlay], "NetworkPolicy", name)
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    workload = next(
        o
        for o in overlays[overlay]
        if o["kind"] in ("Deployment", "DaemonSet") and o["metadata"]["name"] == name
    )
    assert selects(
        policy["spec"]["podSelector"], workload["spec"]["template"]["metadata"]["labels"]
    )
    assert [p for rule in policy["spec"]["ingress"] for p in rule["ports"]] == [
        {"port": port, "protocol": "TCP"}
    ]


# --- certificates ----------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", WITH_CERTS_JOB)
def test_certs_job(overlays: Objects, overlay: str) -> None:
    job = find(overlays[overlay], "Job", "vcl-injector-certs")
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "vcl-injector-certs"
    (container,) = pod["containers"]
    assert container["args"] == [
        "vcl-injector", "certs", "--service", "vcl-injector", "--namespace", "vcl-system",
        "--secret", "vcl-injector-tls", "--webhook", "vcl-injector",
    ]  # fmt: skip
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert not any(o["apiVersion"].startswith("cert-manager.io") for o in overlays[overlay])


def test_cert_manager_chain(overlays: Objects) -> None:
    objects = overlays["cert-manager"]
    mwc = find(objects, "MutatingWebhookConfiguration", "vcl-injector")
    ref = mwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
    namespace, name = ref.split("/")
    cert = find(objects, "Certificate", name)
    assert cert["metadata"]["namespace"] == namespace
    assert cert["spec"]["secretName"] == "vcl-injector-tls"
    assert "vcl-injector.vcl-system.svc" in cert["spec"]["dnsNames"]
    issuer = find(objects, "Issuer", cert["spec"]["issuerRef"]["name"])
    ca = next(
        o
        for o in objects
        if o["kind"] == "Certificate"
        and o["spec"]["secretName"] == issuer["spec"]["ca"]["secretName"]
    )
    assert ca["spec"]["isCA"] is True
    assert not any(o["kind"] == "Job" for o in objects)


# --- the injector's config ----------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_shipped_config_is_valid_and_the_defaults(overlays: Objects, overlay: str) -> None:
    cm = find(overlays[overlay], "ConfigMap", "vcl-injector-config")
    config = parse_config(cm["data"]["config.yaml"], source="vcl-injector-config")
    # calico-vpp adds only Calico/VPP's routing switch (test_injected_pods checks its use).
    extra = {"cni.projectcalico.org/vppVcl": "enable"} if overlay == "calico-vpp" else {}
    assert config == InjectorConfig.model_validate({"podAnnotations": extra})
