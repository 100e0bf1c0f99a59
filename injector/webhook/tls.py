"""A server TLS context whose certificate follows the files on disk.

cert-manager and Secret volumes replace the files (atomically, through a symlink swap);
each new TLS handshake picks the newest good certificate through the SNI callback,
which OpenSSL runs for every ClientHello, with or without a server name.
"""

from __future__ import annotations

import ssl
from pathlib import Path


class CertError(ValueError):
    """The certificate or key cannot be loaded; the message names the files."""


def _signature(path: Path) -> tuple[int, int, int]:
    st = path.stat()  # follows symlinks: a swapped ..data link changes the inode
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as exc:
        raise CertError(f"cannot load TLS certificate {cert} / key {key}: {exc}") from exc
    return ctx


class ReloadingTLS:
    def __init__(self, cert: Path, key: Path) -> None:
        self.cert, self.key = cert, key
        self._seen = self._signatures()
        self.current = _context(cert, key)
        self.server_context = _context(cert, key)
        self.server_context.sni_callback = self._pick

    def _signatures(self) -> tuple[tuple[int, int, int], ...]:
        try:
            return (_signature(self.cert), _signature(self.key))
        except OSError as exc:
            raise CertError(f"cannot read TLS files {self.cert} / {self.key}: {exc}") from exc

    def _pick(self, sslobj: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        sslobj.context = self.current

    def reload_if_changed(self) -> bool:
        """True when a new certificate is now in use; CertError leaves the old one in force."""
        seen = self._signatures()
        if seen == self._seen:
            return False
        new = _context(self.cert, self.key)
        self._seen = seen
        self.current = new
        return True
