"""Authentication of stored native code, so deserialising never runs foreign bytes.

``wasmtime.Module.deserialize`` runs native code from its input and is only
safe on bytes that this installation produced with the same wasmtime version
and engine settings. Each compiled blob is stored with an HMAC-SHA256 tag
over the engine fingerprint, the portable wasm bytes and the blob itself. The
key lives outside the library file, so a copied or tampered library cannot
carry a valid tag and its functions are recompiled from the wasm bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger(__name__)

KEY_BYTES = 32


class ModuleAuthenticator:
    """Signs and checks compiled-module blobs with a per-installation key."""

    def __init__(self, key_path: Path, fingerprint: str) -> None:
        self.key_path = key_path
        self.fingerprint = fingerprint.encode()
        self._key: bytes | None = None
        self._key_loaded = False

    @property
    def key(self) -> bytes | None:
        """The key, created on first use; None if it can be neither read nor created."""
        if not self._key_loaded:
            self._key = self._load_or_create_key()
            self._key_loaded = True
        return self._key

    def _load_or_create_key(self) -> bytes | None:
        try:
            data = self.key_path.read_bytes()
            if len(data) == KEY_BYTES:
                return data
            log.warning("ignoring module key %s: expected %d bytes", self.key_path, KEY_BYTES)
            return None
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("cannot read module key %s: %s", self.key_path, exc)
            return None
        try:
            self.key_path.parent.mkdir(parents=True, exist_ok=True)
            key = secrets.token_bytes(KEY_BYTES)
            fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(key)
            return key
        except FileExistsError:
            return self._load_or_create_key()
        except OSError as exc:
            log.warning(
                "cannot create module key %s: %s; compiled code is not cached", self.key_path, exc
            )
            return None

    def sign(self, wasm: bytes, compiled: bytes) -> bytes | None:
        """Return the tag for ``compiled``, or None when no key is available."""
        key = self.key
        if key is None:
            return None
        return self._tag(key, wasm, compiled)

    def verify(self, wasm: bytes, compiled: bytes | None, tag: bytes | None) -> bool:
        """Return True only if ``tag`` proves this installation produced ``compiled``."""
        key = self.key
        if key is None or compiled is None or tag is None:
            return False
        return hmac.compare_digest(self._tag(key, wasm, compiled), tag)

    def _tag(self, key: bytes, wasm: bytes, compiled: bytes) -> bytes:
        digest = hmac.new(key, digestmod=hashlib.sha256)
        digest.update(len(self.fingerprint).to_bytes(4, "little") + self.fingerprint)
        digest.update(hashlib.sha256(wasm).digest())
        digest.update(compiled)
        return digest.digest()
