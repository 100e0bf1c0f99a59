"""plan(): from what must be (registrations) and what is (VPP + host directories) to the
actions that close the gap. Pure; the order is prune, then create, then sync."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from injector.agent.registration import NAMESPACE_PREFIX, PodRegistration, namespace_id


@dataclass(frozen=True)
class ObservedNamespace:
    ns_id: str
    secret: int
    sock_name: str
    interface: str = ""  # VPP's name of the bound interface ("DELETED (...)" when none)


@dataclass(frozen=True)
class ObservedDirectory:
    uid: str
    vcl_conf: str | None  # None: no file
    secret: int | None  # from the env file; None: no file or unreadable
    socket_exists: bool


@dataclass(frozen=True)
class Observed:
    namespaces: Mapping[str, ObservedNamespace]
    directories: Mapping[str, ObservedDirectory]


@dataclass(frozen=True)
class DeleteNamespace:
    ns_id: str
    sock_name: str  # VPP leaves the socket file behind; apply removes it


@dataclass(frozen=True)
class RemoveDirectory:
    uid: str


@dataclass(frozen=True)
class AddNamespace:
    """Create (or re-add, which updates the secret) the pod's namespace and write the env
    file; `secret` None means a new random one. `new` is False when VPP already has it."""

    reg: PodRegistration
    secret: int | None
    new: bool = True


@dataclass(frozen=True)
class WriteConf:
    reg: PodRegistration


Action = DeleteNamespace | RemoveDirectory | AddNamespace | WriteConf


def plan(
    wanted: Mapping[str, PodRegistration],
    observed: Observed,
    keep: Collection[str] = (),
) -> list[Action]:
    """`keep`: uids of live pods not placed this pass (calico-vpp: waiting for their
    network); their namespace and directory are left as they are."""
    wanted_ns = {reg.ns_id for reg in wanted.values()} | {namespace_id(uid) for uid in keep}
    prune: list[Action] = []
    create: list[Action] = []
    sync: list[Action] = []
    for have in sorted(observed.namespaces.values(), key=lambda n: n.ns_id):
        # Only our namespaces: VPP's "default" and anything another tool made stay.
        if have.ns_id.startswith(NAMESPACE_PREFIX) and have.ns_id not in wanted_ns:
            prune.append(DeleteNamespace(have.ns_id, have.sock_name))
    for uid in sorted(observed.directories):
        if uid not in wanted and uid not in keep:
            prune.append(RemoveDirectory(uid))
    for uid in sorted(wanted):
        reg = wanted[uid]
        ns = observed.namespaces.get(reg.ns_id)
        directory = observed.directories.get(uid)
        secret = directory.secret if directory else None
        if ns is None:
            create.append(AddNamespace(reg, secret))
        elif ns.sock_name != reg.sock_name or (
            reg.file_socket and (directory is None or not directory.socket_exists)
        ):
            # VPP ignores a new sock_name on re-add, and a lost socket is not recreated:
            # only delete + add gives the pod a working socket again. (An abstract
            # socket in the pod's netns leaves no file to check; a new sandbox, a new
            # netns, shows as a new sock_name.)
            prune.append(DeleteNamespace(ns.ns_id, ns.sock_name))
            create.append(AddNamespace(reg, secret))
        elif (
            secret is None
            or ns.secret != secret
            or (reg.interface_name is not None and ns.interface != reg.interface_name)
        ):
            # a re-add updates the secret and the binding (a pod's loopback made anew)
            create.append(AddNamespace(reg, secret, new=False))
        if directory is None or directory.vcl_conf != reg.vcl_conf:
            sync.append(WriteConf(reg))
    return prune + create + sync
