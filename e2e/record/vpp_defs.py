"""What the recorder keeps of VPP's API definitions: the modules and CRCs vppctl_py uses.

VPP's get_api_json answers every module but memclnt, which vpp-papi bundles (it needs it
to connect at all); memclnt's messages (control_ping, the handshake) come from there.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from vppctl_py.connection import BOOTSTRAP_MESSAGE, USED_MESSAGES
from vppctl_py.testing.wire import memclnt_json

# Requests the test double answers besides the client's own (handshake, keepalive, the
# two calls VPP 26.06 refuses with the socket app API).
DOUBLE_MESSAGES = (
    "sockclnt_create",
    "sockclnt_delete",
    "memclnt_keepalive",
    BOOTSTRAP_MESSAGE,
    "app_attach",
    "app_worker_add_del",
)


def services(docs: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """request -> {"reply": ..., "stream_msg": ...} over every module."""
    found: dict[str, dict[str, str]] = {}
    for doc in docs:
        found.update(doc.get("services", {}))
    return found


def message_family(requests: Iterable[str], docs: list[dict[str, Any]]) -> list[str]:
    """The requests with their replies and streamed details, sorted."""
    table = services(docs)
    names: set[str] = set()
    for request in requests:
        service = table.get(request, {})
        names.update(n for n in (request, service.get("reply"), service.get("stream_msg")) if n)
    return sorted(names)


def memclnt() -> dict[str, Any]:
    """vpp-papi's bundled memclnt.api.json (VPP's get_api_json leaves it out)."""
    doc: dict[str, Any] = json.loads(memclnt_json())
    return doc


def trimmed(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The modules defining a message the client or the double uses. Each .api.json
    document carries the types it imports, so the kept ones stand on their own."""
    wanted = set(message_family((*USED_MESSAGES, *DOUBLE_MESSAGES), [*docs, memclnt()]))
    return [d for d in docs if wanted & {m[0] for m in d.get("messages", [])}]


def crc_entry(docs: list[dict[str, Any]], table: Iterable[str], version: str) -> dict[str, Any]:
    """One release's entry of vppctl_py/api_crcs.json: the CRC of each message vppctl_py
    sends or reads, as VPP's message table (`name_crc` keys) gives it."""
    names = message_family(USED_MESSAGES, [*docs, memclnt()])
    by_name = {key.rpartition("_")[0]: "0x" + key.rpartition("_")[2] for key in table}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(f"VPP's message table lacks {', '.join(missing)}")
    return {"version": version, "messages": {name: by_name[name] for name in names}}


def dumps_definitions(docs: list[dict[str, Any]]) -> str:
    """The get_api_json text the double serves: compact, like VPP's own."""
    return json.dumps(docs, separators=(",", ":"))
