"""VPP's socket framing and message encoding for the fake, via vpp-papi's own serializer.

A frame is a 16-byte header `>QII` (q, big-endian body length, gc_mark) and a body that
starts with the u16 message id. Bodies are packed and unpacked by vpp-papi's
VPPMessage objects built from the API JSON, never by hand.
"""

from __future__ import annotations

import functools
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HEADER = struct.Struct(">QII")
# vpp-papi hard-codes the handshake ids (vpp_transport_socket.py): request 15, reply 16.
SOCKCLNT_CREATE_ID = 15
SOCKCLNT_CREATE_REPLY_ID = 16


def load_message_table(path: Path) -> list[tuple[int, str]]:
    """A captured table: `[index, "name_crc"]` pairs in VPP's wire order."""
    return [(int(index), str(name)) for index, name in json.loads(path.read_text())]


@dataclass
class Codec:
    """Message ids and (un)packing for one fake VPP, and the definitions it serves."""

    messages: dict[str, Any]
    table: list[tuple[int, str]]
    api_json: str  # what get_api_json answers: a JSON array of .api.json documents

    @classmethod
    def load(cls, api_json: str, table: list[tuple[int, str]] | None = None) -> Codec:
        messages = definitions(api_json)
        return cls(messages, table if table is not None else generated_table(messages), api_json)

    def __post_init__(self) -> None:
        self.name_by_id = {index: key.rpartition("_")[0] for index, key in self.table}
        self.id_by_name = {name: index for index, name in self.name_by_id.items()}

    def decode(self, body: bytes) -> tuple[str | None, Any]:
        """(message name, papi tuple); name None for an id not in the table."""
        msg_id: int = struct.unpack_from(">H", body)[0]
        name = self.name_by_id.get(msg_id)
        if name is None or name not in self.messages:
            return None, msg_id
        decoded, _ = self.messages[name].unpack(body)
        return name, decoded

    def encode(self, name: str, fields: dict[str, Any]) -> bytes:
        """A complete frame (header + body) for reply `name`."""
        body: bytes = self.messages[name].pack({"_vl_msg_id": self.id_by_name[name], **fields})
        return HEADER.pack(0, len(body), 0) + body

    def handshake_reply(self, context: int, index: int) -> bytes:
        entries = [{"index": i, "name": key} for i, key in self.table]
        return self.encode(
            "sockclnt_create_reply",
            {
                "client_index": 0,
                "context": context,
                "response": 0,
                "index": index,
                "count": len(entries),
                "message_table": entries,
            },
        )


def write_api_dir(docs: list[dict[str, Any]], directory: Path) -> Path:
    """The inverse of api_json_from_dir: an installed-looking *.api.json tree, one file
    per module of a get_api_json answer, plus the memclnt an install also has."""
    (directory / "core").mkdir(parents=True, exist_ok=True)
    for doc in [*docs, {"module": "memclnt", **json.loads(memclnt_json())}]:
        (directory / "core" / f"{doc['module']}.api.json").write_text(json.dumps(doc))
    return directory


def api_json_from_dir(api_dir: Path) -> str:
    """The get_api_json text for an installed *.api.json tree (one array of documents)."""
    docs = [json.loads(p.read_text()) for p in sorted(api_dir.rglob("*.api.json"))]
    return json.dumps(docs)


def memclnt_json() -> str:
    """vpp-papi's bundled memclnt.api.json: VPP's get_api_json leaves memclnt out (papi
    needs it to connect at all), so whoever stands in for an install adds it back."""
    from importlib import resources

    return resources.files("vpp_papi.data").joinpath("memclnt.api.json").read_text()


@functools.cache
def definitions(api_json: str) -> dict[str, Any]:
    """papi's message objects for a get_api_json text and memclnt (which VPP leaves out
    of get_api_json: vpp-papi bundles it, and the fake needs it for the handshake),
    parsed once per process: every test starts a fake, and messages are only read."""
    from vpp_papi.vpp_papi import VPPApiJSONFiles

    messages, _ = VPPApiJSONFiles.process_json_str(memclnt_json())
    served, _ = VPPApiJSONFiles.process_json_array_str(api_json)
    return {**messages, **served}


def generated_table(messages: dict[str, Any]) -> list[tuple[int, str]]:
    """A message table for the loaded definitions, with the handshake at papi's ids."""
    names = sorted(messages)
    fixed = {
        "sockclnt_create": SOCKCLNT_CREATE_ID,
        "sockclnt_create_reply": SOCKCLNT_CREATE_REPLY_ID,
    }
    ids = (i for i in range(1, len(names) + len(fixed) + 1) if i not in fixed.values())
    table = [(fixed.get(name) or next(ids), name) for name in names]
    return [(i, f"{name}_{messages[name].crc[2:]}") for i, name in table]


class FrameBuffer:
    """Reassembles frames from a byte stream."""

    def __init__(self) -> None:
        self.data = bytearray()

    def feed(self, chunk: bytes) -> list[bytes]:
        self.data += chunk
        bodies = []
        while len(self.data) >= HEADER.size:
            _, length, _ = HEADER.unpack_from(self.data)
            if len(self.data) < HEADER.size + length:
                break
            bodies.append(bytes(self.data[HEADER.size : HEADER.size + length]))
            del self.data[: HEADER.size + length]
        return bodies
