"""The per-pod directories on the host: observed, written atomically, removed.

Layout: <root>/pods/<pod uid>/{vcl.conf, vcl.env, app.sock}. The directory is 0711
(the pod's containers may traverse it, never list it); vcl.env holds the namespace
secret and vcl.conf the VCL settings, both owned by the pod's runAsUser (root when
unset) and readable by its fsGroup when set (0640), else 0600; the app socket is made
connectable by the same user/group (0660). Pods whose image alone sets a non-root user
must set runAsUser or fsGroup in the pod spec for their app to read the files.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from injector.agent.endpoints import ENDPOINTS_NAME
from injector.agent.plan import ObservedDirectory
from injector.agent.registration import (
    APP_SOCKET_NAME,
    ENV_FILE_NAME,
    VCL_CONF_NAME,
    PodRegistration,
)

VPP_STARTED_FILE = "vpp-started"  # when the VPP last seen started: survives agent restarts


class HostFiles:
    def __init__(self, root: str) -> None:
        self.root = Path(root)
        self.pods = self.root / "pods"

    def vpp_started(self) -> float | None:
        """When the VPP this node's agent last saw had started, if recorded."""
        try:
            return float((self.root / VPP_STARTED_FILE).read_text())
        except (OSError, ValueError):
            return None

    def forget_vpp_started(self) -> None:
        (self.root / VPP_STARTED_FILE).unlink(missing_ok=True)
        if self.pods.is_dir() and not any(self.pods.iterdir()):
            self.pods.rmdir()

    def record_vpp_started(self, started: float) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{VPP_STARTED_FILE}.tmp"
        tmp.write_text(f"{started:.6f}\n")
        os.replace(tmp, self.root / VPP_STARTED_FILE)

    def observe(self) -> dict[str, ObservedDirectory]:
        if not self.pods.is_dir():
            return {}
        found: dict[str, ObservedDirectory] = {}
        for entry in self.pods.iterdir():
            if not entry.is_dir() or entry.is_symlink():
                continue
            found[entry.name] = ObservedDirectory(
                uid=entry.name,
                vcl_conf=_read(entry / VCL_CONF_NAME),
                secret=_secret(_read(entry / ENV_FILE_NAME)),
                socket_exists=_is_socket(entry / APP_SOCKET_NAME),
            )
        return found

    def prepare(self, reg: PodRegistration) -> None:
        """The pod's directory, before VPP creates the socket in it."""
        path = Path(reg.directory)
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o711)

    def write_env(self, reg: PodRegistration, secret: int) -> None:
        text = f"VCL_APP_NAMESPACE_ID={reg.ns_id}\nVCL_APP_NAMESPACE_SECRET={secret}\n"
        if reg.file_socket:  # mode local: the interposer decides by the node's table
            text += f"VCL_ENDPOINTS={ENDPOINTS_NAME}\n"
        if _read(Path(reg.directory) / ENV_FILE_NAME) != text:  # a resync keeps the file
            self._write(reg, ENV_FILE_NAME, text)

    def write_conf(self, reg: PodRegistration) -> None:
        """vcl.conf, the pod's go-ahead; its directory exists (prepare)."""
        self._write(reg, VCL_CONF_NAME, reg.vcl_conf)

    def own_socket(self, reg: PodRegistration) -> None:
        sock = Path(reg.sock_name)
        if _is_socket(sock):
            _chown(sock, reg)
            os.chmod(sock, 0o660)

    def remove_directory(self, uid: str) -> None:
        path = self.pods / uid
        if path.parent == self.pods and path.name not in ("", ".", ".."):
            shutil.rmtree(path, ignore_errors=True)

    def remove_socket(self, sock_name: str) -> None:
        path = Path(sock_name)
        # Only inside our root: a namespace VPP reports must not make us delete elsewhere.
        if self.pods in path.parents and _is_socket(path):
            path.unlink(missing_ok=True)

    def _write(self, reg: PodRegistration, name: str, text: str) -> None:
        """temp + fsync + rename: the pod never sees a half-written file."""
        final = Path(reg.directory) / name
        tmp = final.with_name(f".{name}.tmp")
        mode = 0o640 if reg.owner_gid is not None else 0o600
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            os.write(fd, text.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, mode)
        _chown(tmp, reg)
        os.replace(tmp, final)


def _chown(path: Path, reg: PodRegistration) -> None:
    if os.geteuid() != 0:  # tests and dev runs: cannot give files away, and need not
        return
    os.chown(path, reg.owner_uid if reg.owner_uid is not None else -1, reg.owner_gid or -1)


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def _secret(env: str | None) -> int | None:
    for line in (env or "").splitlines():
        key, _, value = line.partition("=")
        if key == "VCL_APP_NAMESPACE_SECRET" and value.isdigit():
            return int(value)
    return None


def _is_socket(path: Path) -> bool:
    try:
        return stat.S_ISSOCK(path.lstat().st_mode)
    except OSError:
        return False
