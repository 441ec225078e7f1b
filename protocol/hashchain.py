"""Hash chains with signed checkpoints: the tamper evidence shared by the broker's audit log
(:mod:`broker.audit`) and the node's officer access log (:mod:`node.console.accesslog`).
No I/O.

Every entry carries ``chain`` (which writer), ``seq`` (1, 2, ...), ``prev`` (the previous
entry's hash) and ``time``; its ``hash`` is SHA-256 over a domain string and the canonical
JSON of the entry without ``hash``. The domain string separates the logs: an entry of one can
never verify as an entry of the other. A checkpoint is itself an entry whose Ed25519
signature covers (chain, seq, head), like a transparency log's signed tree head: whoever
holds the public key can prove nothing before it was modified, removed or reordered.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from schemas import to_epoch_ms

from . import crypto
from .keys import SigningKey
from .trust import canonical_json

__all__ = [
    "GENESIS",
    "ChainReport",
    "HashChain",
    "checkpoint_message",
    "entry_hash",
    "verify_chains",
]

GENESIS: Final[str] = "0" * 64


def entry_hash(domain: bytes, entry: Mapping[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(domain + canonical_json(body)).hexdigest()


def checkpoint_message(chain: str, seq: int, head: str, time: int) -> bytes:
    return canonical_json({"chain": chain, "head": head, "seq": seq, "time": time})


@dataclass
class HashChain:
    """The writer's side: appends entries and makes checkpoints. ``seq`` and ``head`` resume a
    chain already on disk (its last entry's seq and hash)."""

    chain: str
    key: SigningKey | None = None
    seq: int = 0
    head: str = GENESIS
    since_checkpoint: int = 0
    entry_domain: bytes = b"palermo/v1/hash-chain-entry\x00"
    checkpoint_domain: bytes = b"palermo/v1/hash-chain-checkpoint\x00"

    def append(self, record: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        self.seq += 1
        entry = {
            **record,
            "chain": self.chain,
            "seq": self.seq,
            "prev": self.head,
            "time": to_epoch_ms(now),
        }
        entry["hash"] = entry_hash(self.entry_domain, entry)
        self.head = entry["hash"]
        self.since_checkpoint += 1
        return entry

    def checkpoint(self, now: datetime) -> dict[str, Any]:
        """A signed statement of the head so far; itself the next entry of the chain."""
        if self.key is None:
            raise ValueError(f"chain {self.chain} has no signing key for checkpoints")
        time = to_epoch_ms(now)
        covered = self.seq
        message = checkpoint_message(self.chain, covered, self.head, time)
        sig = crypto.sign(self.key.private, self.checkpoint_domain, message)
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
    """What verification found in one chain."""

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


@dataclass(frozen=True)
class _Rules:
    entry_domain: bytes
    checkpoint_domain: bytes
    keys: Mapping[str, Ed25519PublicKey]
    signer: str


def _check(state: _ChainState, entry: Mapping[str, Any], rules: _Rules) -> str | None:
    """The reason this entry breaks the chain, or None."""
    seq = entry.get("seq")
    if not isinstance(seq, int) or seq != state.seq + 1:
        expected = state.seq + 1
        return f"entry seq {seq} where {expected} was expected: an entry was removed or reordered"
    if entry.get("prev") != state.head:
        return f"entry {seq} does not link to entry {seq - 1}: removed, reordered or modified"
    if entry.get("hash") != entry_hash(rules.entry_domain, entry):
        return f"entry {seq} was modified: its hash does not match its content"
    if entry.get("type") == "checkpoint":
        key = rules.keys.get(str(entry.get("kid")))
        if key is None:
            return f"checkpoint {seq} is signed by unknown {rules.signer} key {entry.get('kid')}"
        if entry.get("head") != state.head or entry.get("covers") != state.seq:
            return f"checkpoint {seq} does not state the chain's actual head"
        try:
            crypto.verify(
                key,
                bytes.fromhex(str(entry.get("sig"))),
                rules.checkpoint_domain,
                checkpoint_message(
                    str(entry["chain"]),
                    int(entry["covers"]),
                    str(entry["head"]),
                    int(entry["signed_at"]),
                ),
            )
        except (crypto.AuthError, ValueError, KeyError):
            return f"checkpoint {seq} has an invalid signature"
    return None


def verify_chains(
    entries: Iterable[Mapping[str, Any]],
    keys: Mapping[str, Ed25519PublicKey],
    *,
    entry_domain: bytes,
    checkpoint_domain: bytes,
    signer: str,
) -> list[ChainReport]:
    """Check every chain in order; each report names its first broken entry. ``signer`` names
    the checkpoint keys in messages ("broker", "node")."""
    rules = _Rules(entry_domain, checkpoint_domain, keys, signer)
    states: dict[str, _ChainState] = {}
    for entry in entries:
        chain = str(entry.get("chain"))
        state = states.setdefault(chain, _ChainState(ChainReport(chain)))
        report = state.report
        if report.broken is not None:
            continue
        reason = _check(state, entry, rules)
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
