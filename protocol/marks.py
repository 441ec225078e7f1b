"""High-water marks: the highest version of each trust document a process has accepted.

Every signed version of a document stays a valid signature for ever (and older versions stay
readable in the directory bucket's history), so a signature check alone cannot tell the current
document from a rollback to an older, looser one. What can is the version: each directory key
has a mark, the highest version accepted under it (with the digest of that document), and a
document below the mark, or a different document at the mark, is refused. The marks are pure
data here; ``protocol.watermarks`` keeps them on disk so a restart does not forget them.

A document is also bound to its key: ``cert.<A>`` holds only A's membership certificate,
``policy.agency.<A>`` only A's standing policy, and so on (:func:`document_key`). Without the
binding a member could file another agency's old document under its own writable key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel

from policies import canonical_json
from schemas.errors import Rollback, TrustError, WrongDirectoryKey

__all__ = [
    "AGENCY_PREFIX",
    "FEDERATION_KEY",
    "REVOCATIONS_KEY",
    "HighWaterMarks",
    "Mark",
    "check_key",
    "digest",
    "document_key",
]

FEDERATION_KEY: Final[str] = "policy.federation"
AGENCY_PREFIX: Final[str] = "policy.agency."
REVOCATIONS_KEY: Final[str] = "revocations"
_PER_AGENCY: Final[Mapping[str, str]] = {
    "membership-certificate": "cert",
    "key-bundle": "bundle",
    "subscriptions": "subs",
    "agency-policy": "policy.agency",
}
_SINGLE: Final[Mapping[str, str]] = {
    "revocation-list": REVOCATIONS_KEY,
    "federation-policy": FEDERATION_KEY,
}


def document_key(signed: Mapping[str, Any]) -> str:
    """The one directory key a signed document may live under: from its kind and agency."""
    document = signed.get("document") if isinstance(signed, Mapping) else None
    if not isinstance(document, Mapping):
        raise TrustError("not a signed document: no 'document'")
    kind, agency = document.get("kind"), document.get("agency")
    if isinstance(kind, str) and kind in _SINGLE:
        return _SINGLE[kind]
    if isinstance(kind, str) and kind in _PER_AGENCY and isinstance(agency, str):
        return f"{_PER_AGENCY[kind]}.{agency}"
    raise TrustError(f"cannot store a document of kind {kind!r} in the directory")


def check_key(key: str, signed: Mapping[str, Any]) -> None:
    """Refuse a document read from ``key`` unless ``key`` is its own (kind and agency).

    Checked before the signature, and before the document is filed anywhere: the agency named
    inside a document is never trusted to say where it belongs.
    """
    expected = document_key(signed)
    if expected != key:
        raise WrongDirectoryKey(key, expected)


def digest(document: BaseModel) -> str:
    """SHA-256 of the validated document's canonical JSON: what 'the same document' means."""
    return hashlib.sha256(
        canonical_json(document.model_dump(mode="json", exclude_none=True))
    ).hexdigest()


@dataclass(frozen=True, slots=True)
class Mark:
    """The highest version accepted under a key; ``digest`` None: a configured minimum only."""

    version: int
    digest: str | None = None


class HighWaterMarks:
    """Marks per directory key; they only ever go up (``revision`` counts the changes)."""

    def __init__(self, marks: Mapping[str, Mark] | None = None) -> None:
        self._marks: dict[str, Mark] = {}
        self.revision = 0
        self.merge(marks or {})

    def get(self, key: str) -> Mark | None:
        return self._marks.get(key)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._marks))

    def __len__(self) -> int:
        return len(self._marks)

    def as_dict(self) -> dict[str, Mark]:
        return dict(sorted(self._marks.items()))

    def check(
        self, key: str, version: int, doc_digest: str, what: str, unit: str = "version"
    ) -> None:
        """Raise :class:`Rollback` if a document at ``version`` is below the mark for ``key``.

        ``unit`` is what the document calls its version (serial, seq, version), for the reason.
        """
        mark = self._marks.get(key)
        if mark is None:
            return
        if version < mark.version:
            raise Rollback(
                f"{what} under {key} has {unit} {version}, not newer than {unit} {mark.version} "
                f"already accepted here: an older one is a rollback and is refused; publish a "
                f"newer {unit}",
                key=key,
                held=mark.version,
                offered=version,
            )
        if version == mark.version and mark.digest is not None and mark.digest != doc_digest:
            # Two different documents under one version: only a new version may change one,
            # or whoever writes second could quietly undo what the first said.
            raise Rollback(
                f"a different {what} with {unit} {version} was already accepted under {key} "
                f"(not newer: the same {unit}); issue the change with a new {unit}, "
                f"{unit} {version + 1}",
                key=key,
                held=mark.version,
                offered=version,
            )

    def raise_to(self, key: str, version: int, doc_digest: str | None) -> None:
        """Record an accepted document (call only after :meth:`check` passed)."""
        mark = self._marks.get(key)
        if (
            mark is None
            or version > mark.version
            or (version == mark.version and mark.digest is None and doc_digest is not None)
        ):
            self._marks[key] = Mark(version, doc_digest)
            self.revision += 1

    def merge(self, marks: Mapping[str, Mark]) -> None:
        """Take the higher of each mark (persisted marks, configured minimums)."""
        for key, mark in marks.items():
            self.raise_to(key, mark.version, mark.digest)
