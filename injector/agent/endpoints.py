"""The node's VCL endpoint table (network mode `local`): which (address, port, protocol)
VPP can serve on this node, published to every injected pod of the node so that the
interposer sends a connection to VPP only when VPP can serve it (patches/src/
ds_endpoints.c reads it; its header comment and this module describe one format).

Format (version 1), little-endian header, then the entries sorted by their bytes:
magic "VCLEPT1\\0", u32 version, u32 count, u64 generation, u32 entry size (20), u32
FNV-1a 32 of the entries; an entry is u8 family (4/6), u8 protocol (6 TCP, 17 UDP), u16
port (network order), 16 address bytes (IPv4: 4, then zeros).

Publishing: the table is written once under the agent's root, then hard-linked into each
pod's directory as a temporary name and renamed over ``endpoints``: every pod sees the
new table at once (one inode), the interposer notices the new inode at its next connect,
and a reader never sees a half-written file.
"""

from __future__ import annotations

import ipaddress
import os
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from injector.agent.registration import PodRegistration
from injector.core import constants as c

ENDPOINTS_NAME = "endpoints"  # in each pod's directory; the env file names it
MAGIC = b"VCLEPT1\0"
VERSION = 1
ENTRY_SIZE = 20
HEADER = struct.Struct("<8sIIQII")
TCP, UDP = 6, 17

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Policy = Mapping[str, Any]  # a NetworkPolicy as the API returns it


class TableError(ValueError):
    """A table that is not one this module writes."""


@dataclass(frozen=True)
class Endpoint:
    address: IPAddress
    port: int
    protocol: int = TCP

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"port {self.port} is not 1-65535")
        if self.protocol not in (TCP, UDP):
            raise ValueError(f"protocol {self.protocol} is not TCP (6) or UDP (17)")
        if isinstance(self.address, ipaddress.IPv6Address) and self.address.ipv4_mapped:
            raise ValueError(f"{self.address} is v4-mapped: list {self.address.ipv4_mapped}")

    def key(self) -> bytes:
        family = 4 if self.address.version == 4 else 6
        return (
            bytes((family, self.protocol))
            + struct.pack("!H", self.port)
            + (self.address.packed.ljust(16, b"\0"))
        )

    def __str__(self) -> str:
        proto = "tcp" if self.protocol == TCP else "udp"
        host = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return f"{host}:{self.port}/{proto}"


def fnv1a(data: bytes) -> int:
    """The entries' checksum (FNV-1a, 32 bits)."""
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def encode(endpoints: Iterable[Endpoint], generation: int) -> bytes:
    keys = sorted({e.key() for e in endpoints})
    body = b"".join(keys)
    return HEADER.pack(MAGIC, VERSION, len(keys), generation, ENTRY_SIZE, fnv1a(body)) + body


def decode(data: bytes) -> tuple[int, list[Endpoint]]:
    """(generation, endpoints) of a table; TableError says what is wrong with it."""
    if len(data) < HEADER.size:
        raise TableError("shorter than its header")
    magic, version, count, generation, size, checksum = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise TableError("not an endpoint table")
    if version != VERSION or size != ENTRY_SIZE:
        raise TableError(f"version {version}, entry size {size}: not version 1")
    body = data[HEADER.size :]
    if len(body) != count * ENTRY_SIZE:
        raise TableError(f"{len(body)} bytes of entries for a count of {count}")
    if fnv1a(body) != checksum:
        raise TableError("checksum mismatch")
    found = []
    for i in range(count):
        raw = body[i * ENTRY_SIZE : (i + 1) * ENTRY_SIZE]
        family, proto, port = raw[0], raw[1], struct.unpack("!H", raw[2:4])[0]
        if family not in (4, 6):
            raise TableError(f"entry {i}: family {family}")
        addr: IPAddress = (
            ipaddress.IPv4Address(raw[4:8]) if family == 4 else ipaddress.IPv6Address(raw[4:20])
        )
        try:
            found.append(Endpoint(addr, port, proto))
        except ValueError as e:
            raise TableError(f"entry {i}: {e}") from None
    return generation, found


def publish(data: bytes, root: Path, pod_dirs: Iterable[Path]) -> list[Path]:
    """The table into every pod directory given (atomically each); returns the directories
    it could not reach (a pod deleted meanwhile), which the caller may ignore."""
    root.mkdir(parents=True, exist_ok=True)
    staged = root / f".{ENDPOINTS_NAME}.{os.getpid()}"
    with open(staged, "wb") as f:
        f.write(data)
    os.chmod(staged, 0o644)  # node-wide facts, the same for every pod: no secret
    missed = []
    try:
        for d in pod_dirs:
            tmp = d / f".{ENDPOINTS_NAME}.new"
            try:
                tmp.unlink(missing_ok=True)
                os.link(staged, tmp)
                os.replace(tmp, d / ENDPOINTS_NAME)
            except OSError:
                missed.append(d)
    finally:
        staged.unlink(missing_ok=True)
    return missed


# ---- which endpoints VPP may serve: a pure function of pods, listeners and policies ----

OPT_OUT_ANNOTATION = c.ANNOTATION_VPP_INGRESS  # "false": peers reach it over the kernel only


@dataclass(frozen=True)
class PodFacts:
    """What the table needs of one registered pod of the node."""

    uid: str
    namespace: str
    name: str
    ns_id: str  # its VPP app namespace
    ips: tuple[str, ...]
    labels: dict[str, str]
    annotations: dict[str, str]


@dataclass(frozen=True)
class Listener:
    """A VPP listener of an app namespace (`show app listeners`)."""

    ns_id: str
    local: str  # "ip:port", IPv6 as VPP prints it (no brackets)
    transport: str  # "T" TCP, "U" UDP, "CT:T" cut-through TCP, ...


@dataclass(frozen=True)
class PodEndpoints:
    """For vcl-status: what VPP serves of a pod, and why the rest is not."""

    served: tuple[Endpoint, ...]
    not_served: tuple[tuple[str, str], ...]  # (listener, why)
    # a pod whose egress is restricted by policy gets an empty table: all its connections
    # stay on the kernel, where the CNI enforces that policy
    egress_restricted_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class TablePlan:
    endpoints: frozenset[Endpoint]
    pods: dict[str, PodEndpoints]  # by uid


def selector_matches(selector: Mapping[str, Any] | None, labels: dict[str, str]) -> bool:
    """A Kubernetes LabelSelector against labels (an empty one matches all, None nothing);
    ValueError for a selector it cannot read (policy_selects counts that as a match)."""
    if selector is None:
        return False
    match_labels = selector.get("matchLabels") or {}
    if not isinstance(match_labels, Mapping):
        raise ValueError("matchLabels is not a map")
    if any(labels.get(str(k)) != str(v) for k, v in match_labels.items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        if not isinstance(expr, Mapping):
            raise ValueError("a matchExpression is not a map")
        key, op = str(expr.get("key")), expr.get("operator")
        values = [str(v) for v in expr.get("values") or []]
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise ValueError(f"operator {op!r}")
    return True


def policy_types(policy: Policy) -> set[str]:
    """A NetworkPolicy's effective types: policyTypes, else Ingress (plus Egress when it
    has egress rules), as the API server defaults them."""
    spec = policy.get("spec") or {}
    given = spec.get("policyTypes")
    if given:
        return {str(t) for t in given}
    return {"Ingress", *(["Egress"] if spec.get("egress") else [])}


def policy_selects(policy: Policy, pod: PodFacts) -> bool:
    """Whether the policy applies to the pod. A selector this code cannot read counts as
    selecting: leaving a pod to the kernel is safe, serving it through VPP is not."""
    if (policy.get("metadata") or {}).get("namespace") != pod.namespace:
        return False
    selector = (policy.get("spec") or {}).get("podSelector")
    try:
        return selector_matches(selector if isinstance(selector, Mapping) else {}, pod.labels)
    except ValueError:
        return True


def _selecting(policies: list[Policy], pod: PodFacts, kind: str) -> tuple[str, ...]:
    """The names of the policies of that type that apply to the pod."""
    return tuple(
        sorted(
            str((p.get("metadata") or {}).get("name"))
            for p in policies
            if kind in policy_types(p) and policy_selects(p, pod)
        )
    )


def _split(local: str) -> tuple[IPAddress, int] | None:
    host, _, port = local.rpartition(":")
    try:
        return ipaddress.ip_address(host.strip("[]")), int(port)
    except ValueError:
        return None


def plan_table(
    pods: Iterable[PodFacts], listeners: Iterable[Listener], policies: Iterable[Policy]
) -> TablePlan:
    """The endpoints VPP may serve on the node: each registered pod's TCP listeners at the
    pod's own IPs (a wildcard listener stands for all of them), minus the pods that a
    NetworkPolicy selects for ingress (cut-through inside VPP is not subject to policy)
    or that opt out."""
    by_ns: dict[str, list[Listener]] = {}
    for listener in listeners:
        by_ns.setdefault(listener.ns_id, []).append(listener)
    policies = list(policies)
    endpoints: set[Endpoint] = set()
    result: dict[str, PodEndpoints] = {}
    for pod in pods:
        ingress, egress = _selecting(policies, pod, "Ingress"), _selecting(policies, pod, "Egress")
        ips = []
        for raw in pod.ips:
            try:
                ips.append(ipaddress.ip_address(raw))
            except ValueError:
                continue
        served: list[Endpoint] = []
        not_served: list[tuple[str, str]] = []
        for listener in sorted(by_ns.get(pod.ns_id, []), key=lambda x: x.local):
            where = _split(listener.local)
            if where is None:
                not_served.append((listener.local, "not an address VPP reported as ip:port"))
                continue
            addr, port = where
            if listener.transport.endswith("U"):
                not_served.append((f"{listener.local}/udp", "UDP stays on the kernel"))
                continue
            if pod.annotations.get(OPT_OUT_ANNOTATION) == "false":
                not_served.append((listener.local, f'{OPT_OUT_ANNOTATION}: "false"'))
                continue
            if ingress:
                not_served.append(
                    (listener.local, "selected by NetworkPolicy " + ", ".join(ingress)
                     + " (ingress): reached over the kernel, where the CNI enforces it")
                )  # fmt: skip
                continue
            at = [ip for ip in ips if ip.version == addr.version]
            if not addr.is_unspecified:
                at = [ip for ip in at if ip == addr]
            if not at:
                not_served.append((listener.local, "not at the pod's IPs"))
                continue
            served.extend(Endpoint(ip, port) for ip in at)
        endpoints.update(served)
        # (VPP lists a listener twice: in the namespace's local table and in the VRF's)
        result[pod.uid] = PodEndpoints(tuple(sorted(set(served), key=Endpoint.key)),
                                       tuple(dict.fromkeys(not_served)), egress)  # fmt: skip
    return TablePlan(frozenset(endpoints), result)


# ---- the agent's side: build, publish, remember (mode local) ----


def pod_facts(pod: Mapping[str, Any], reg: PodRegistration) -> PodFacts:
    meta = pod.get("metadata") or {}
    return PodFacts(
        uid=reg.uid,
        namespace=reg.namespace,
        name=reg.name,
        ns_id=reg.ns_id,
        ips=reg.pod_ips,
        labels=dict(meta.get("labels") or {}),
        annotations=dict(meta.get("annotations") or {}),
    )


class EndpointTable:
    """The node's table as last published: which bytes each pod's directory holds, the
    generation (counted up whenever the node's set of endpoints changes) and the plan,
    for /status and vcl-status."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.generation = 0
        self.plan: TablePlan = TablePlan(frozenset(), {})
        self.policies_known = False
        self._endpoints: frozenset[Endpoint] | None = None
        self._given: dict[str, bytes] = {}  # pod directory -> what it holds

    def _full(self) -> bytes:
        return encode(self.plan.endpoints, self.generation)

    def _for(self, uid: str) -> bytes:
        pod = self.plan.pods.get(uid)
        if not self.policies_known or (pod is not None and pod.egress_restricted_by):
            return encode((), self.generation)  # kernel for everything: policy applies
        return self._full()

    def give(self, uid: str, directory: Path) -> None:
        """A new pod's table, before its vcl.conf lets the app start."""
        data = self._for(uid)
        if not publish(data, self.root, [directory]):
            self._given[str(directory)] = data

    def update(
        self,
        pods: Mapping[str, tuple[Mapping[str, Any], PodRegistration]],  # uid -> (pod, reg)
        listeners: Iterable[Listener],
        policies: Iterable[Policy] | None,
    ) -> int:
        """Plans the table and publishes what changed; returns the pods written."""
        self.policies_known = policies is not None
        facts = [pod_facts(pod, reg) for pod, reg in pods.values()]
        self.plan = plan_table(facts, listeners, policies or [])
        if self.plan.endpoints != self._endpoints:
            self._endpoints = self.plan.endpoints
            self.generation += 1
        written = 0
        groups: dict[bytes, list[Path]] = {}
        for uid, (_, reg) in pods.items():
            data = self._for(uid)
            if self._given.get(reg.directory) != data:
                groups.setdefault(data, []).append(Path(reg.directory))
        for data, dirs in groups.items():
            missed = set(map(str, publish(data, self.root, dirs)))
            for d in dirs:
                if str(d) not in missed:
                    self._given[str(d)] = data
                    written += 1
        live = {reg.directory for _, reg in pods.values()}
        self._given = {d: b for d, b in self._given.items() if d in live}
        return written
