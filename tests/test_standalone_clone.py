"""The repository stands alone: a copy of its tracked files, with nothing beside it (no
../shared, no VPP API files, no VPP_API_DIR), collects the whole suite without error and
passes the tests that read recorded fixtures. Catches a test, fixture path or default
that reaches outside the repository, as a user's fresh clone would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Every test that reads tests/fixtures (VPP captures and definitions, apiserver bodies).
FIXTURE_TESTS = [
    "tests/vppctl/test_api_bootstrap.py",
    "tests/vppctl/test_cli_text.py",
    "tests/vppctl/test_fake_cli.py",
    "tests/vppctl/test_wire_replay.py",
    "tests/webhook/test_mutate.py",
    "tests/agent/test_recorded_watch.py",
]
LEAKY_ENV = ("VPP_API_DIR", "VPP_FAKE_DEFINITIONS", "VPP_FAKE_MESSAGE_TABLE", "VCL_SHARED_DIR")


def tracked_files() -> list[str]:
    """The files a clone has: git's list (working-tree versions, so uncommitted edits
    are tested too); outside a checkout, every file but caches and dot-folders."""
    if (REPO / ".git").exists() and shutil.which("git"):
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO, capture_output=True, check=True,
        ).stdout  # fmt: skip
        return [f for f in out.decode().split("\0") if f and (REPO / f).is_file()]
    return [
        str(p.relative_to(REPO))
        for p in REPO.rglob("*")
        if p.is_file() and not any(part.startswith(".") or part == "__pycache__"
                                   for part in p.relative_to(REPO).parts)
    ]  # fmt: skip


def run_pytest(clone: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in LEAKY_ENV}
    # `python -m` puts the clone first on sys.path: its own injector/vppctl_py are tested.
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=clone, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_a_clone_alone_collects_and_passes_its_fixture_tests(tmp_path: Path) -> None:
    clone = tmp_path / "alone" / "vcl-injector"
    for name in tracked_files():
        target = clone / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    assert sorted(p.name for p in clone.parent.iterdir()) == ["vcl-injector"]

    collected = run_pytest(clone, "--collect-only")
    assert collected.returncode == 0, collected.stdout[-3000:] + collected.stderr[-3000:]
    assert " error" not in collected.stdout.splitlines()[-1]

    fixtures = run_pytest(clone, *FIXTURE_TESTS)
    assert fixtures.returncode == 0, fixtures.stdout[-3000:] + fixtures.stderr[-3000:]
    assert " passed" in fixtures.stdout.splitlines()[-1]
