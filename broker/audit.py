"""The tamper-evident audit log: hash-chained entries with signed checkpoints. No I/O.

Each broker process writes its own chain (``chain`` = broker id + a per-start suffix), so
replicas never contend for one head. An entry of type ``decisions`` holds the records of one
batch (each envelope, and each recipient's decision with reasons and obligations).
Every entry carries ``seq`` (1, 2, ...) and ``prev`` (the
previous entry's hash); its ``hash`` is SHA-256 over a domain string and the canonical JSON of
the entry without ``hash``. Every N entries or T milliseconds, and on shutdown, the broker
appends a checkpoint entry whose Ed25519 signature covers (chain, seq, head): like a
transparency log's signed tree head, it lets anyone holding the broker's public key prove that
nothing before it was modified, removed or reordered. The chain itself is
:mod:`protocol.hashchain`, shared with the node's officer access log.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from policies import AuditFlag
from protocol import hashchain
from protocol.hashchain import GENESIS, ChainReport, HashChain
from protocol.keys import SigningKey
from protocol.trust import canonical_json
from schemas import to_epoch_ms

__all__ = [
    "GENESIS",
    "AuditChain",
    "ChainReport",
    "entry_hash",
    "trail",
    "trail_lines",
    "verify_entries",
]

DOMAIN_ENTRY: Final[bytes] = b"palermo/v1/audit-entry\x00"
DOMAIN_CHECKPOINT: Final[bytes] = b"palermo/v1/audit-checkpoint\x00"
# The error code of an envelope given up after max_deliver attempts (broker.deadletters.EXHAUSTED).
GIVEN_UP_CODE: Final[str] = "redelivery_exhausted"
# The audit flag of a decision that relied on the originator's override of the
# non-refoulement guard.
OVERRIDE_FLAG: Final[str] = str(AuditFlag.NON_REFOULEMENT_OVERRIDE_USED)


def entry_hash(entry: Mapping[str, Any]) -> str:
    return hashchain.entry_hash(DOMAIN_ENTRY, entry)


def _hashed(domain: bytes, entry: Mapping[str, Any]) -> tuple[str, bytes]:
    """``hashchain.entry_hash(domain, entry)`` and ``canonical_json`` of the entry with that
    hash, for an entry without ``hash``: each top-level value is encoded once, and canonical
    JSON of a mapping is its members' encodings joined in sorted key order (``sort_keys``)."""
    parts = {
        k: canonical_json(k) + b":" + (_records_json(v) if k == "records" else canonical_json(v))
        for k, v in entry.items()
    }
    body = b"{" + b",".join(parts[k] for k in sorted(parts)) + b"}"
    digest = hashlib.sha256(domain + body).hexdigest()
    parts["hash"] = b'"hash":"' + digest.encode() + b'"'
    return digest, b"{" + b",".join(parts[k] for k in sorted(parts)) + b"}"


_PLACEHOLDER: Final[bytes] = b'"decisions":0'


def _records_json(records: Any) -> bytes:
    """``canonical_json(records)``, serialising a decision record shared by several envelopes
    (by identity: the broker reuses one record for equal decisions) only once."""
    if not isinstance(records, list):
        return canonical_json(records)
    memo: dict[int, bytes] = {}
    out: list[bytes] = []
    for record in records:
        decisions = record.get("decisions") if isinstance(record, dict) else None
        if not isinstance(decisions, list) or not decisions:
            out.append(canonical_json(record))
            continue
        encoded = []
        for d in decisions:
            known = memo.get(id(d))
            if known is None:
                known = memo[id(d)] = canonical_json(d)
            encoded.append(known)
        # The record with a placeholder in the decisions' sorted place, which is then replaced.
        # JSON escapes quotes inside strings, so the placeholder can only be a member; if some
        # nested map also has it, the record is encoded whole instead.
        shell = canonical_json({**record, "decisions": 0})
        if shell.count(_PLACEHOLDER) != 1:
            out.append(canonical_json(record))
            continue
        out.append(shell.replace(_PLACEHOLDER, b'"decisions":[' + b",".join(encoded) + b"]"))
    return b"[" + b",".join(out) + b"]"


@dataclass
class AuditChain(HashChain):
    """The writer's side: appends entries and makes checkpoints (:class:`HashChain` with the
    audit log's domain strings; the node's access log uses its own)."""

    key: SigningKey  # the broker always signs its checkpoints
    entry_domain: bytes = DOMAIN_ENTRY
    checkpoint_domain: bytes = DOMAIN_CHECKPOINT

    def append_encoded(
        self, record: Mapping[str, Any], now: datetime
    ) -> tuple[dict[str, Any], bytes]:
        """The next entry (as :meth:`append` makes it), and its canonical JSON (what is
        stored), encoded once.

        The hash covers the canonical JSON of the entry without ``hash``; the stored bytes are
        the same pieces with ``"hash"`` put in its sorted place, so a batch's records (most of
        the entry) are serialised once rather than once to hash and again to publish.
        """
        self.seq += 1
        entry = {
            **record,
            "chain": self.chain,
            "seq": self.seq,
            "prev": self.head,
            "time": to_epoch_ms(now),
        }
        entry["hash"], encoded = _hashed(self.entry_domain, entry)
        self.head = entry["hash"]
        self.since_checkpoint += 1
        return entry, encoded


def verify_entries(
    entries: Iterable[Mapping[str, Any]], keys: Mapping[str, Ed25519PublicKey]
) -> list[ChainReport]:
    """Check every chain in stream order; each report names its first broken entry."""
    return hashchain.verify_chains(
        entries,
        keys,
        entry_domain=DOMAIN_ENTRY,
        checkpoint_domain=DOMAIN_CHECKPOINT,
        signer="broker",
    )


def trail(entries: Iterable[Mapping[str, Any]], envelope_id: str) -> list[dict[str, Any]]:
    """Every decision about one report: who received it, when, under which obligations.

    A row for an agency the originator's non-refoulement override names, or whose decision
    relied on it (audit flag ``non-refoulement-override-used``), carries the override itself,
    justification included: the question an auditor asks of such a transfer is why it was
    made.
    """
    rows: list[dict[str, Any]] = []
    for entry in entries:
        for record in entry.get("records", []) if entry.get("type") == "decisions" else []:
            if record.get("envelope") != envelope_id:
                continue
            where = {"time": entry["time"], "chain": entry["chain"], "seq": entry["seq"]}
            override = record.get("non_refoulement_override")
            for decision in record.get("decisions", []):
                row = {**where, **decision}
                named = override and decision.get("recipient") in override.get("agencies", [])
                if named or (override and OVERRIDE_FLAG in decision.get("audit_flags", [])):
                    row["non_refoulement_override"] = override
                rows.append(row)
            if record.get("error"):
                # An envelope the broker gave up on after its last attempt was not refused: it
                # is in PLM_DEAD, to be republished (docs/broker.md, "Streams").
                given_up = record["error"].get("code") == GIVEN_UP_CODE
                rows.append({**where, "decision": "given-up" if given_up else "invalid",
                             "recipient": None, "reasons": [record["error"]]})  # fmt: skip
    return rows


def trail_lines(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The trail as an auditor reads it: one line per decision (time, recipient, decision, the
    obligations it was released under or the reasons it was refused), then, indented, what
    else the decision recorded: sections withheld, audit flags, agreements relied on, and a
    non-refoulement override with its justification. ``--json`` gives the same rows whole."""
    lines: list[str] = []
    for row in rows:
        obligations = ", ".join(
            f"{o['code']}={o['value']}" if o.get("value") is not None else str(o["code"])
            for o in row.get("obligations", [])
        )
        reasons = "; ".join(
            f"{r.get('code', '')}: {r['message']}" if r.get("message") else str(r.get("code", ""))
            for r in row.get("reasons", [])
            if isinstance(r, Mapping)
        )
        allowed = row.get("decision") == "allow"
        what = (f"obligations: {obligations}" if obligations else "") if allowed else reasons
        lines.append(
            f"{row['time']}  {row.get('recipient') or '*':<12} {row['decision']:<8} {what}".rstrip()
        )
        if row.get("withheld_sections"):
            lines.append(f"    withheld sections: {', '.join(row['withheld_sections'])}")
        if row.get("audit_flags"):
            lines.append(f"    audit flags: {', '.join(row['audit_flags'])}")
        if row.get("agreements"):
            lines.append(f"    agreements: {', '.join(row['agreements'])}")
        if override := row.get("non_refoulement_override"):
            lines.append(
                f"    non-refoulement override for {', '.join(override.get('agencies', []))}: "
                f"{override.get('justification', '')}"
            )
    return lines
