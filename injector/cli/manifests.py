"""Reading and writing Kubernetes manifests (multi-document YAML or JSON) for the CLIs."""

from __future__ import annotations

import json
from typing import Any

import yaml

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class ManifestError(ValueError):
    """The input is not parseable YAML/JSON; the message names the document and line."""


class _Dumper(_BaseDumper):  # type: ignore[misc,valid-type]
    """Keeps key order and writes multi-line strings (init scripts, configs) as blocks."""


def _str(dumper: Any, value: str) -> Any:
    style = "|" if "\n" in value and not any(ch in value for ch in "\t\r") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def load_documents(text: str, *, source: str) -> list[Any]:
    """All documents of a YAML (or JSON) stream; empty documents are dropped."""
    docs: list[Any] = []
    try:
        for doc in yaml.load_all(text, Loader=_Loader):
            if doc is not None:
                docs.append(doc)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ManifestError(
            f"{source}: document {len(docs) + 1}: not valid YAML{where}: {problem}"
        ) from exc
    return docs


def dump_yaml(docs: list[Any]) -> str:
    return "---\n".join(
        yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1 << 30)
        for doc in docs
    )


def dump_json(docs: list[Any]) -> str:
    body: Any = docs[0] if len(docs) == 1 else {"apiVersion": "v1", "kind": "List", "items": docs}
    return json.dumps(body, indent=2) + "\n"
