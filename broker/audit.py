"""The tamper-evident audit log: hash-chained entries with signed checkpoints. No I/O.

Each broker process writes its own chain (``chain`` = broker id + a per-start suffix), so
replicas never contend for one head. An entry of type ``decisions`` holds the records of one
batch (each envelope, and each recipient's decision with reasons and obligations).
Every entry carries ``seq`` (1, 2, ...) and ``prev`` (the
previous entry's hash); its ``hash`` is SHA-256 over a domain string and the canonical JSON of
the entry without ``hash``. Every N entries or T milliseconds, and on shutdown, the broker
appends a checkpoint entry whose Ed25519 signature covers (chain, seq, head): like a
transparency log's signed tree head, it lets anyone holding the broker's public key prove that
nothing before it was modified, removed or reordered.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from protocol import crypto
from protocol.keys import SigningKey
from protocol.trust import canonical_json
from schemas import to_epoch_ms

__all__ = [
    "GENESIS",
    "AuditChain",
    "ChainReport",
    "entry_hash",
    "trail",
    "verify_entries",
]

GENESIS: Final[str] = "0" * 64
DOMAIN_ENTRY: Final[bytes] = b"palermo/v1/audit-entry\x00"
DOMAIN_CHECKPOINT: Final[bytes] = b"palermo/v1/audit-checkpoint\x00"
# The error code of an envelope given up after max_deliver attempts (broker.service.EXHAUSTED).
GIVEN_UP_CODE: Final[str] = "redelivery_exhausted"


def entry_hash(entry: Mapping[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(DOMAIN_ENTRY + canonical_json(body)).hexdigest()


def _checkpoint_message(chain: str, seq: int, head: str, time: int) -> bytes:
    return canonical_json({"chain": chain, "head": head, "seq": seq, "time": time})


@dataclass
class AuditChain:
    """The writer's side: appends entries and makes checkpoints."""

    chain: str
    key: SigningKey
    seq: int = 0
    head: str = GENESIS
    since_checkpoint: int = 0

    def append(self, record: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        self.seq += 1
        entry = {
            **record,
            "chain": self.chain,
            "seq": self.seq,
            "prev": self.head,
            "time": to_epoch_ms(now),
        }
        entry["hash"] = entry_hash(entry)
        self.head = entry["hash"]
        self.since_checkpoint += 1
        return entry

    def checkpoint(self, now: datetime) -> dict[str, Any]:
        """A signed statement of the head so far; itself the next entry of the chain."""
        time = to_epoch_ms(now)
        covered = self.seq
        sig = crypto.sign(
            self.key.private,
            DOMAIN_CHECKPOINT,
            _checkpoint_message(self.chain, covered, self.head, time),
        )
        entry = self.append(
            {
                "type": "checkpoint",
                "covers": covered,
                "head": self.head,
                "signed_at": time,
                "kid": self.key.kid,
                "sig": sig.hex(),
            },
            now,
        )
        self.since_checkpoint = 0
        return entry


@dataclass
class ChainReport:
    """What ``palermo audit verify`` found in one chain."""

    chain: str
    entries: int = 0
    checkpoints: int = 0
    last_checkpoint_seq: int = 0
    broken: str | None = None
    broken_seq: int | None = None

    @property
    def ok(self) -> bool:
        return self.broken is None

    @property
    def unsigned_tail(self) -> int:
        """Entries after the last checkpoint: intact as far as the chain shows, not yet signed."""
        return self.entries - self.last_checkpoint_seq

    def to_dict(self) -> dict[str, Any]:
        return {
            "chain": self.chain,
            "ok": self.ok,
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "unsigned_tail": self.unsigned_tail,
            "broken": self.broken,
            "broken_seq": self.broken_seq,
        }


@dataclass
class _ChainState:
    report: ChainReport
    head: str = GENESIS
    seq: int = 0
    order: list[int] = field(default_factory=list)


def _check(
    state: _ChainState, entry: Mapping[str, Any], keys: Mapping[str, Ed25519PublicKey]
) -> str | None:
    """The reason this entry breaks the chain, or None."""
    seq = entry.get("seq")
    if not isinstance(seq, int) or seq != state.seq + 1:
        expected = state.seq + 1
        return f"entry seq {seq} where {expected} was expected: an entry was removed or reordered"
    if entry.get("prev") != state.head:
        return f"entry {seq} does not link to entry {seq - 1}: removed, reordered or modified"
    if entry.get("hash") != entry_hash(entry):
        return f"entry {seq} was modified: its hash does not match its content"
    if entry.get("type") == "checkpoint":
        key = keys.get(str(entry.get("kid")))
        if key is None:
            return f"checkpoint {seq} is signed by unknown broker key {entry.get('kid')}"
        if entry.get("head") != state.head or entry.get("covers") != state.seq:
            return f"checkpoint {seq} does not state the chain's actual head"
        try:
            crypto.verify(
                key,
                bytes.fromhex(str(entry.get("sig"))),
                DOMAIN_CHECKPOINT,
                _checkpoint_message(
                    str(entry["chain"]),
                    int(entry["covers"]),
                    str(entry["head"]),
                    int(entry["signed_at"]),
                ),
            )
        except (crypto.AuthError, ValueError, KeyError):
            return f"checkpoint {seq} has an invalid signature"
    return None


def verify_entries(
    entries: Iterable[Mapping[str, Any]], keys: Mapping[str, Ed25519PublicKey]
) -> list[ChainReport]:
    """Check every chain in stream order; each report names its first broken entry."""
    states: dict[str, _ChainState] = {}
    for entry in entries:
        chain = str(entry.get("chain"))
        state = states.setdefault(chain, _ChainState(ChainReport(chain)))
        report = state.report
        if report.broken is not None:
            continue
        reason = _check(state, entry, keys)
        if reason is not None:
            report.broken = reason
            report.broken_seq = entry.get("seq") if isinstance(entry.get("seq"), int) else None
            continue
        state.seq, state.head = int(entry["seq"]), str(entry["hash"])
        report.entries += 1
        if entry.get("type") == "checkpoint":
            report.checkpoints += 1
            report.last_checkpoint_seq = state.seq
    return [states[c].report for c in sorted(states)]


def trail(entries: Iterable[Mapping[str, Any]], envelope_id: str) -> list[dict[str, Any]]:
    """Every decision about one report: who received it, when, under which obligations."""
    rows: list[dict[str, Any]] = []
    for entry in entries:
        for record in entry.get("records", []) if entry.get("type") == "decisions" else []:
            if record.get("envelope") != envelope_id:
                continue
            where = {"time": entry["time"], "chain": entry["chain"], "seq": entry["seq"]}
            for decision in record.get("decisions", []):
                rows.append({**where, **decision})
            if record.get("error"):
                # An envelope the broker gave up on after its last attempt was not refused: it
                # is in PLM_DEAD, to be republished (docs/broker.md, "Streams").
                given_up = record["error"].get("code") == GIVEN_UP_CODE
                rows.append({**where, "decision": "given-up" if given_up else "invalid",
                             "recipient": None, "reasons": [record["error"]]})  # fmt: skip
    return rows
