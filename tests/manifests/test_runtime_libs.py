"""manifests/images/runtime-libs.sh, which fills the runtime image's library folder: LDP
and its whole ldd closure, transitive dependencies included (VPP's libvppinfra needs
libunwind, which needs liblzma: slim and distroless app images have neither), never
glibc's own libraries (the app's image brings those); a dependency it cannot find is an
error naming it, not an image that fails later in every injected pod."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "manifests" / "images" / "runtime-libs.sh"
LZMA = "/lib/x86_64-linux-gnu/liblzma.so.5"


def build(work: Path, *, mid_dir: Path) -> Path:
    """A fake LDP -> libmid.so (in mid_dir) -> liblzma.so.5, like LDP -> libvppinfra ->
    libunwind -> liblzma."""
    (work / "mid.c").write_text("int mid(void) { return 1; }\n")
    (work / "ldp.c").write_text("int mid(void);\nint ldp(void) { return mid(); }\n")
    mid_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(["gcc", "-shared", "-fPIC", "-Wl,-soname,libmid.so,--no-as-needed", "-o",
                    str(mid_dir / "libmid.so"), str(work / "mid.c"), LZMA], check=True)  # fmt: skip
    ldp = work / "libvcl_ldpreload.so.26.06"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(ldp), str(work / "ldp.c"),
                    f"-L{mid_dir}", "-lmid", f"-Wl,-rpath,{mid_dir}"], check=True)  # fmt: skip
    return ldp


@pytest.fixture
def lzma() -> None:
    assert Path(LZMA).exists(), "liblzma.so.5 (xz-utils' library) is on every Debian"


def test_the_whole_closure_but_glibc(tmp_path: Path, lzma: None) -> None:
    ldp = build(tmp_path, mid_dir=tmp_path / "vpp-lib")
    dest = tmp_path / "runtime"
    subprocess.run(["sh", str(SCRIPT), str(ldp), str(dest)], check=True)
    assert sorted(p.name for p in dest.iterdir()) == [
        "liblzma.so.5", "libmid.so", "libvcl_ldpreload.so"
    ]  # fmt: skip
    # LDP resolves with the folder alone, and every file is readable by any user.
    check = subprocess.run(["ldd", str(dest / "libvcl_ldpreload.so")], capture_output=True,
                           text=True, env={"LD_LIBRARY_PATH": str(dest)}, check=True)  # fmt: skip
    assert "not found" not in check.stdout
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in dest.iterdir())


def test_a_dependency_that_cannot_be_found_is_named(tmp_path: Path, lzma: None) -> None:
    ldp = build(tmp_path, mid_dir=tmp_path / "vpp-lib")
    (tmp_path / "vpp-lib" / "libmid.so").unlink()  # as if a package were missing
    run = subprocess.run(["sh", str(SCRIPT), str(ldp), str(tmp_path / "runtime")],
                         capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 1
    assert "still missing: libmid.so" in run.stderr
