"""docs/ stays in step with manifests/.

Covers:
- the four guides exist; every overlay of manifests/ is named in docs/install.md;
- the heap figures the docs quote (512 MB, 207 MB for 110 pods, ~690 namespaces, 0.65 MB)
  are the ones manifests/render.py uses;
- every relative link between the guides points to an existing file and heading anchor.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
GUIDES = ["install.md", "uninstall.md", "upgrade.md", "troubleshooting.md"]


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes."""
    out = set()
    for line in markdown.splitlines():
        match = re.match(r"#+ (.*)", line)
        if match:
            text = re.sub(r"[^\w\- ]", "", match.group(1).lower().replace("`", ""))
            out.add(text.replace(" ", "-"))
    return out


def test_guides_exist() -> None:
    for name in GUIDES:
        assert (DOCS / name).read_text(encoding="utf-8").startswith("# ")


def test_install_names_every_overlay(overlays: dict[str, list[dict[str, Any]]]) -> None:
    text = (DOCS / "install.md").read_text(encoding="utf-8")
    for overlay in overlays:
        assert f"`manifests/{overlay}`" in text, overlay


def test_heap_figures_match_render_py(vpp_render: ModuleType) -> None:
    text = (DOCS / "install.md").read_text(encoding="utf-8")
    heap_mb = int(vpp_render.MAIN_HEAP_SIZE.rstrip("M"))
    assert f"**{heap_mb} MB**" in text
    assert f"= {vpp_render.heap_needed_mb(110):.0f} MB" in text
    assert f"≈ {round(vpp_render.namespaces_that_fit(heap_mb), -1):.0f} namespaces" in text
    assert f"~{vpp_render.NAMESPACE_MB} MB with 2 MB tables" in text


@pytest.mark.parametrize("name", GUIDES)
def test_links_resolve(name: str) -> None:
    text = (DOCS / name).read_text(encoding="utf-8")
    for target, anchor in re.findall(r"\]\(([\w.-]+\.md)(?:#([\w-]+))?\)", text):
        linked = DOCS / target
        assert linked.is_file(), target
        if anchor:
            assert anchor in anchors(linked.read_text(encoding="utf-8")), f"{target}#{anchor}"
