"""The storage key and the per-row data keys' sealing: AES-256-GCM, each wrapped key and each
body bound to its table and row id. See :mod:`node.inbox` and docs/decisions/0017."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from schemas.errors import KeyFileError, PalermoError

KEY_LEN: Final[int] = 32
NONCE_LEN: Final[int] = 12
# Domain separation: a wrapped data key or a body cannot be moved to another row or table.
_DEK_AAD: Final[bytes] = b"palermo/v1/inbox-dek\x00"
_BODY_AAD: Final[bytes] = b"palermo/v1/inbox-body\x00"


class InboxError(PalermoError):
    code = "inbox_error"


class StorageKey:
    """The node's at-rest key: a 32-byte file with mode 0600, created on first use."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_LEN:
            raise KeyFileError(f"a storage key is {KEY_LEN} bytes, this one is {len(key)}")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "StorageKey(<hidden>)"

    @classmethod
    def load_or_create(cls, path: Path) -> StorageKey:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                raise KeyFileError(
                    f"storage key {path} is readable by others (mode {mode:04o}); "
                    f"run: chmod 600 {path}"
                ) from None
            return cls(path.read_bytes())
        key = os.urandom(KEY_LEN)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
        return cls(key)

    def wrap(self, table: str, row_id: str, data_key: bytes) -> bytes:
        """Seal a row's data key under the storage key, bound to its table and id."""
        nonce = os.urandom(NONCE_LEN)
        return nonce + self._aead.encrypt(nonce, data_key, _bind(_DEK_AAD, table, row_id))

    def unwrap(self, table: str, row_id: str, wrapped: bytes) -> bytes:
        try:
            return self._aead.decrypt(
                wrapped[:NONCE_LEN], wrapped[NONCE_LEN:], _bind(_DEK_AAD, table, row_id)
            )
        except InvalidTag as exc:
            raise InboxError(
                f"stored report {row_id} does not decrypt: wrong storage key or a tampered database"
            ) from exc

    def open_legacy(self, report_id: str, sealed: bytes) -> bytes:
        """Read a body of format 0 (sealed directly under this key), to re-encrypt it."""
        try:
            return self._aead.decrypt(sealed[:NONCE_LEN], sealed[NONCE_LEN:], report_id.encode())
        except InvalidTag as exc:
            raise InboxError(
                f"stored report {report_id} does not decrypt: wrong storage key or a "
                "tampered database"
            ) from exc


def _bind(label: bytes, table: str, row_id: str) -> bytes:
    return label + table.encode() + b"\x00" + row_id.encode()


def _seal_body(data_key: bytes, table: str, row_id: str, plaintext: bytes) -> bytes:
    nonce = os.urandom(NONCE_LEN)
    return nonce + AESGCM(data_key).encrypt(nonce, plaintext, _bind(_BODY_AAD, table, row_id))
