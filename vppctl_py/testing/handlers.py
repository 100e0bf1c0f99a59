"""The fake VPP's answers to each binary API message, with VPP 26.06's retvals."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vppctl_py.testing import render
from vppctl_py.testing.state import (
    ABSTRACT_PREFIX,
    FEATURE_DISABLED,
    NO_INDEX,
    OK,
    Interface,
    VppModel,
    lowest_free,
)

# (reply message name, reply fields) pairs, in the order they go out.
Replies = list[tuple[str, dict[str, Any]]]
RT_BACKEND_ENGINE_DISABLE = 0


@dataclass
class Context:
    """What a handler may look at besides the request."""

    model: VppModel
    pid: int
    client_index: int
    api_json: str  # the definitions this fake serves (get_api_json)


def show_version(ctx: Context, msg: Any) -> Replies:
    return [
        (
            "show_version_reply",
            {
                "context": msg.context,
                "retval": OK,
                "program": "vpe",
                "version": render.VERSION.removeprefix("v"),
                "build_date": render.BUILD_DATE,
                "build_directory": render.BUILD_DIRECTORY,
            },
        )
    ]


def control_ping(ctx: Context, msg: Any) -> Replies:
    # VPP answers client_index 0 here (captured), not the caller's index.
    fields = {"context": msg.context, "retval": OK, "client_index": 0, "vpe_pid": ctx.pid}
    return [("control_ping_reply", fields)]


def cli_inband(ctx: Context, msg: Any) -> Replies:
    retval, text = render.run_cli(ctx.model, str(msg.cmd), ctx.pid)
    return [("cli_inband_reply", {"context": msg.context, "retval": retval, "reply": text})]


def session_enable_disable_v2(ctx: Context, msg: Any) -> Replies:
    # Enabling while enabled is a no-op returning 0 (captured), as is disabling.
    ctx.model.session_enabled = int(msg.rt_engine_type) != RT_BACKEND_ENGINE_DISABLE
    return [("session_enable_disable_v2_reply", {"context": msg.context, "retval": OK})]


def _namespace(ctx: Context, msg: Any, sock_name: str, reply: str) -> Replies:
    model, ns_id = ctx.model, str(msg.namespace_id)
    if msg.is_add:
        fibs = (int(msg.ip4_fib_id), int(msg.ip6_fib_id))
        retval, index = model.add_namespace(
            ns_id, sock_name, int(msg.secret), int(msg.sw_if_index), fibs
        )
    else:
        retval, index = model.del_namespace(ns_id), 0
    return [(reply, {"context": msg.context, "retval": retval, "appns_index": index})]


def app_namespace_add_del_v4(ctx: Context, msg: Any) -> Replies:
    return _namespace(ctx, msg, str(msg.sock_name), "app_namespace_add_del_v4_reply")


def app_namespace_add_del_v3(ctx: Context, msg: Any) -> Replies:
    sock_name, netns = str(msg.sock_name), str(msg.netns)
    if netns:  # what VPP's v3 handler builds from the bare name
        sock_name = f"{ABSTRACT_PREFIX}{sock_name},netns_name={netns}"
    return _namespace(ctx, msg, sock_name, "app_namespace_add_del_v3_reply")


def app_attach(ctx: Context, msg: Any) -> Replies:
    # The socket app API is always on in 26.06: binary-API attach is refused (captured).
    fields = {"context": msg.context, "retval": FEATURE_DISABLED, "segment_name": ""}
    return [("app_attach_reply", fields)]


def app_worker_add_del(ctx: Context, msg: Any) -> Replies:
    fields = {"context": msg.context, "retval": FEATURE_DISABLED, "is_add": msg.is_add}
    return [("app_worker_add_del_reply", {**fields, "segment_name": ""})]


def sw_interface_dump(ctx: Context, msg: Any) -> Replies:
    wanted = int(msg.sw_if_index)
    replies: Replies = []
    for iface in sorted(ctx.model.interfaces.values(), key=lambda i: i.index):
        if wanted not in (NO_INDEX, iface.index):
            continue
        flags = (1 if iface.admin_up else 0) | (2 if iface.link_up else 0)
        fields = {
            "context": msg.context,
            "sw_if_index": iface.index,
            "sup_sw_if_index": iface.index,
            "flags": flags,
            "mtu": [0, 0, 0, 0],
            "interface_name": iface.name,
            "interface_dev_type": "Loopback" if iface.name.startswith("loop") else "local",
            "tag": iface.tag,
        }
        replies.append(("sw_interface_details", fields))
    return replies


def sw_interface_get_table(ctx: Context, msg: Any) -> Replies:
    iface = ctx.model.interfaces.get(int(msg.sw_if_index))
    retval, vrf = (OK, iface.vrf) if iface else (-2, 0)  # INVALID_SW_IF_INDEX
    return [
        ("sw_interface_get_table_reply", {"context": msg.context, "retval": retval, "vrf_id": vrf})
    ]


def ip_address_dump(ctx: Context, msg: Any) -> Replies:
    iface = ctx.model.interfaces.get(int(msg.sw_if_index))
    version = 6 if msg.is_ipv6 else 4
    addresses: list[ipaddress.IPv4Interface | ipaddress.IPv6Interface] = (
        [a for a in iface.addresses if a.version == version] if iface else []
    )
    return [
        ("ip_address_details", {"context": msg.context, "sw_if_index": iface.index, "prefix": a})
        for a in addresses
        if iface is not None
    ]


# --- per-pod loopbacks, with the retvals VPP 26.06 gave (ARCHITECTURE.md, mode local) ---
INVALID_SW_IF_INDEX = -2
NO_SUCH_FIB = -3
DUPLICATE_IF_ADDRESS = {4: -105, 6: -127}
ADDRESSES_BEFORE_TABLE = -114


def _reply(name: str, msg: Any, retval: int, **fields: Any) -> Replies:
    return [(name, {"context": msg.context, "retval": retval, **fields})]


def ip_table_add_del_v2(ctx: Context, msg: Any) -> Replies:
    if msg.is_add:  # adding an existing table is 0; so is deleting one in use
        ctx.model.fibs.add(int(msg.table.table_id))
    return _reply("ip_table_add_del_v2_reply", msg, OK)


def create_loopback_instance(ctx: Context, msg: Any) -> Replies:
    model = ctx.model
    index = lowest_free(model.interfaces)
    taken = {int(i.name[4:]) for i in model.interfaces.values() if i.name[4:].isdigit()}
    name = f"loop{lowest_free(taken)}"
    model.interfaces[index] = Interface(index, name, admin_up=False, link_up=False)
    return _reply("create_loopback_instance_reply", msg, OK, sw_if_index=index)


def delete_loopback(ctx: Context, msg: Any) -> Replies:
    iface = ctx.model.interfaces.get(int(msg.sw_if_index))
    if iface is None or not iface.name.startswith("loop"):
        return _reply("delete_loopback_reply", msg, INVALID_SW_IF_INDEX)
    del ctx.model.interfaces[iface.index]
    return _reply("delete_loopback_reply", msg, OK)


def sw_interface_tag_add_del(ctx: Context, msg: Any) -> Replies:
    iface = ctx.model.interfaces.get(int(msg.sw_if_index))
    if iface is None:
        return _reply("sw_interface_tag_add_del_reply", msg, INVALID_SW_IF_INDEX)
    iface.tag = str(msg.tag) if msg.is_add else ""
    return _reply("sw_interface_tag_add_del_reply", msg, OK)


def sw_interface_set_table(ctx: Context, msg: Any) -> Replies:
    iface = ctx.model.interfaces.get(int(msg.sw_if_index))
    vrf, version = int(msg.vrf_id), 6 if msg.is_ipv6 else 4
    if iface is None:
        retval = INVALID_SW_IF_INDEX
    elif vrf not in ctx.model.fibs:
        retval = NO_SUCH_FIB
    elif any(a.version == version for a in iface.addresses):
        retval = ADDRESSES_BEFORE_TABLE
    else:
        retval = OK
        if version == 4:
            iface.vrf = vrf
        else:
            iface.vrf6 = vrf
    return _reply("sw_interface_set_table_reply", msg, retval)


def sw_interface_add_del_address(ctx: Context, msg: Any) -> Replies:
    iface = ctx.model.interfaces.get(int(msg.sw_if_index))
    prefix = ipaddress.ip_interface(msg.prefix)
    if iface is None:
        return _reply("sw_interface_add_del_address_reply", msg, INVALID_SW_IF_INDEX)
    if not msg.is_add:
        iface.addresses = [a for a in iface.addresses if a != prefix]
        return _reply("sw_interface_add_del_address_reply", msg, OK)
    elsewhere = any(a.ip == prefix.ip for i in ctx.model.interfaces.values() for a in i.addresses)
    if elsewhere:
        return _reply("sw_interface_add_del_address_reply", msg,
                      DUPLICATE_IF_ADDRESS[prefix.version])  # fmt: skip
    iface.addresses.append(prefix)
    return _reply("sw_interface_add_del_address_reply", msg, OK)


def sw_interface_set_flags(ctx: Context, msg: Any) -> Replies:
    iface = ctx.model.interfaces.get(int(msg.sw_if_index))
    if iface is None:
        return _reply("sw_interface_set_flags_reply", msg, INVALID_SW_IF_INDEX)
    iface.admin_up = iface.link_up = bool(int(msg.flags) & 1)  # a loopback's link follows
    return _reply("sw_interface_set_flags_reply", msg, OK)


def sockclnt_delete(ctx: Context, msg: Any) -> Replies:
    return [("sockclnt_delete_reply", {"context": msg.context, "response": 1})]


def memclnt_keepalive(ctx: Context, msg: Any) -> Replies:
    return [("memclnt_keepalive_reply", {"context": msg.context, "retval": OK})]


def get_api_json(ctx: Context, msg: Any) -> Replies:
    # How vpp-papi bootstraps (bootstrapapi=True): every module's definitions in one
    # string, a JSON array of .api.json documents.
    return [("get_api_json_reply", {"context": msg.context, "retval": OK, "json": ctx.api_json})]


HANDLERS: dict[str, Callable[[Context, Any], Replies]] = {
    f.__name__: f
    for f in (
        show_version,
        control_ping,
        cli_inband,
        session_enable_disable_v2,
        app_namespace_add_del_v4,
        app_namespace_add_del_v3,
        app_attach,
        app_worker_add_del,
        sw_interface_dump,
        sw_interface_get_table,
        ip_address_dump,
        ip_table_add_del_v2,
        create_loopback_instance,
        delete_loopback,
        sw_interface_tag_add_del,
        sw_interface_set_table,
        sw_interface_add_del_address,
        sw_interface_set_flags,
        sockclnt_delete,
        memclnt_keepalive,
        get_api_json,
    )
}
