"""The audit chain: verifies when intact, names the first broken entry when not."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.audit import AuditChain, entry_hash, trail, verify_entries
from protocol.keys import SigningKey
from protocol.trust import canonical_json

KEY = SigningKey.generate("BROKER-1")
KEYS = {KEY.kid: KEY.public.key}
T0 = datetime(2026, 11, 22, 12, tzinfo=UTC)


def _chain(n: int = 10, every: int = 4) -> list[dict[str, Any]]:
    chain = AuditChain("BROKER-1.test", KEY)
    out = []
    for i in range(n):
        now = T0 + timedelta(seconds=i)
        out.append(
            chain.append(
                {
                    "type": "decisions",
                    "records": [_record(i)],
                },
                now,
            )
        )
        if chain.since_checkpoint >= every:
            out.append(chain.checkpoint(now))
    out.append(chain.checkpoint(T0 + timedelta(seconds=n)))
    return out


def _record(i: int) -> dict[str, Any]:
    return {
        "envelope": f"env-{i}",
        "decisions": [
            {
                "recipient": "MLT-AFM",
                "decision": "allow",
                "reasons": [],
                "obligations": [{"code": "no-judicial-disclosure"}],
            },
            {
                "recipient": "AUS-ABF",
                "decision": "deny",
                "reasons": [{"code": "not-in-rel-to"}],
                "obligations": [],
            },
        ],
    }


def test_intact_chain_verifies() -> None:
    """An untouched chain verifies with every entry covered by a checkpoint."""
    [report] = verify_entries(_chain(), KEYS)
    assert (True, 0) == (report.ok, report.unsigned_tail)
    assert 3 == report.checkpoints


def test_modified_entry_is_named() -> None:
    """Changing a decision's content breaks that very entry."""
    entries = _chain()
    entries[3]["records"][0]["decisions"][1]["decision"] = "allow"
    [report] = verify_entries(entries, KEYS)
    assert (False, 4) == (report.ok, report.broken_seq)
    assert "modified" in str(report.broken)


def test_modified_entry_with_recomputed_hash_is_caught_by_the_next_link() -> None:
    """Recomputing the altered entry's hash breaks the link from the next entry."""
    from broker.audit import entry_hash

    entries = _chain()
    entries[3]["records"][0]["envelope"] = "forged"
    entries[3]["hash"] = entry_hash(entries[3])
    [report] = verify_entries(entries, KEYS)
    assert (False, 5) == (report.ok, report.broken_seq)


def test_removed_entry_is_named() -> None:
    """Deleting an entry is reported at the entry after the gap."""
    entries = _chain()
    del entries[2]
    [report] = verify_entries(entries, KEYS)
    assert (False, 4) == (report.ok, report.broken_seq)
    assert "removed" in str(report.broken)


def test_reordered_entries_are_named() -> None:
    """Swapping two entries is reported at the first one out of place."""
    entries = _chain()
    entries[1], entries[2] = entries[2], entries[1]
    [report] = verify_entries(entries, KEYS)
    assert (False, 3) == (report.ok, report.broken_seq)


def test_forged_checkpoint_signature_is_refused() -> None:
    """A checkpoint signed with another key is refused even with a consistent hash."""
    from broker.audit import entry_hash

    entries = _chain()
    other = SigningKey.generate("BROKER-1")
    idx = next(i for i, e in enumerate(entries) if e.get("type") == "checkpoint")
    entries[idx]["kid"] = other.kid
    entries[idx]["hash"] = entry_hash(entries[idx])
    [report] = verify_entries(entries, {**KEYS, other.kid: other.public.key})
    assert False is report.ok
    assert "invalid signature" in str(report.broken)


def test_unknown_broker_key_is_refused() -> None:
    """Without the broker's public key the checkpoints cannot be trusted."""
    [report] = verify_entries(_chain(), {})
    assert "unknown broker key" in str(report.broken)


def test_truncated_tail_shows_as_unsigned() -> None:
    """Entries after the last checkpoint are counted, so a cut tail is visible."""
    entries = _chain()[:-1]
    [report] = verify_entries(entries, KEYS)
    assert (True, 2) == (report.ok, report.unsigned_tail)


@pytest.mark.parametrize("chains", [2, 3])
def test_interleaved_chains_verify_independently(chains: int) -> None:
    """Several brokers' chains interleaved in one stream each verify on their own."""
    entries = []
    for c in range(chains):
        chain = AuditChain(f"B{c}", KEY)
        for i in range(5):
            entries.append(chain.append({"type": "decisions", "records": [_record(i)]}, T0))
        entries.append(chain.checkpoint(T0))
    interleaved = sorted(entries, key=lambda e: (e["seq"], e["chain"]))
    reports = verify_entries(interleaved, KEYS)
    assert [True] * chains == [r.ok for r in reports]


def test_trail_lists_receivers_and_denials() -> None:
    """The trail of one report names who received it, under which obligations, and who not."""
    rows = trail(_chain(), "env-2")
    assert [("MLT-AFM", "allow"), ("AUS-ABF", "deny")] == [
        (r["recipient"], r["decision"]) for r in rows
    ]
    assert "no-judicial-disclosure" == rows[0]["obligations"][0]["code"]


def test_trail_shows_an_envelope_given_up_as_such() -> None:
    """A redelivery_exhausted record is 'given-up' in the trail (it can be republished), not
    'invalid' like a refusal."""
    from broker.service import EXHAUSTED

    chain = AuditChain("B.1", KEY)
    record = {"envelope": "env-9", "error": {"code": EXHAUSTED, "reason": "not stored"}}
    entry = chain.append({"type": "decisions", "records": [record]}, T0)
    assert [("given-up", EXHAUSTED)] == [
        (r["decision"], r["reasons"][0]["code"]) for r in trail([entry], "env-9")
    ]


OVERRIDE = {
    "agencies": ["LBY-DCIM"],
    "justification": "the person is not a refugee and not at risk on return",
}


def _override_entry() -> dict[str, Any]:
    """One report: LBY-DCIM gets the personal data under the override; MLT-AFM gets it with the
    protected persons withheld and an agreement relied on; AUS-ABF is refused."""
    record = {
        "envelope": "env-o",
        "non_refoulement_override": OVERRIDE,
        "decisions": [
            {"recipient": "LBY-DCIM", "decision": "allow", "reasons": [{"code": "allowed"}],
             "obligations": [{"code": "no-judicial-disclosure"}, {"code": "h3", "value": "x-y"}],
             "audit_flags": ["non-refoulement-override-used"],
             "agreements": ["ita-lby@v1"]},
            {"recipient": "MLT-AFM", "decision": "allow", "reasons": [{"code": "allowed"}],
             "obligations": [{"code": "no-judicial-disclosure"}],
             "withheld_sections": ["protected-persons"]},
            {"recipient": "AUS-ABF", "decision": "deny", "obligations": [],
             "reasons": [{"code": "not-in-rel-to", "message": "AUS-ABF is not in rel_to"}]},
        ],
    }  # fmt: skip
    return AuditChain("B.1", KEY).append({"type": "decisions", "records": [record]}, T0)


def test_trail_keeps_the_non_refoulement_override_with_its_justification() -> None:
    """The override travels to the rows of the agencies it names (issue 15 item 9)."""
    rows = {r["recipient"]: r for r in trail([_override_entry()], "env-o")}
    assert OVERRIDE == rows["LBY-DCIM"]["non_refoulement_override"]
    assert "non_refoulement_override" not in rows["MLT-AFM"]
    assert "non_refoulement_override" not in rows["AUS-ABF"]


def test_trail_text_shows_flags_withheld_sections_obligations_and_the_justification() -> None:
    """What --json had and the text did not: every field an auditor asks about."""
    from broker.audit import trail_lines

    text = "\n".join(trail_lines(trail([_override_entry()], "env-o")))
    assert "LBY-DCIM     allow    obligations: no-judicial-disclosure, h3=x-y" in text
    assert "    audit flags: non-refoulement-override-used" in text
    assert "    agreements: ita-lby@v1" in text
    assert (
        "    non-refoulement override for LBY-DCIM: the person is not a refugee and not at "
        "risk on return"
    ) in text
    assert "    withheld sections: protected-persons" in text
    assert "AUS-ABF      deny     not-in-rel-to: AUS-ABF is not in rel_to" in text


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
RECORDS = st.dictionaries(
    st.text(max_size=8).filter(lambda k: k not in ("hash", "chain", "seq", "prev", "time")),
    JSON_VALUES,
    max_size=5,
)


@given(st.lists(RECORDS, min_size=1, max_size=3))
def test_an_entry_is_encoded_once_as_canonical_json(records: list[dict[str, Any]]) -> None:
    """append_encoded's bytes (each value encoded once, issue 19) are exactly the canonical JSON
    of the entry, its hash is the one an auditor recomputes, and the stored bytes verify."""
    chain = AuditChain("BROKER-1.test", KEY)
    stored = []
    for record in records:
        entry, encoded = chain.append_encoded(record, T0)
        assert encoded == canonical_json(entry)
        assert entry["hash"] == entry_hash(entry) == chain.head
        stored.append(json.loads(encoded))
    [report] = verify_entries(stored, KEYS)
    assert report.ok
    assert report.entries == len(records)


@given(
    st.lists(JSON_VALUES.filter(lambda v: isinstance(v, dict)), min_size=1, max_size=3),
    st.lists(st.tuples(RECORDS, st.lists(st.integers(0, 2), max_size=4)), min_size=1, max_size=4),
)
def test_shared_decision_records_encode_as_canonical_json(
    pool: list[dict[str, Any]], records: list[tuple[dict[str, Any], list[int]]]
) -> None:
    """A decision record shared by several envelopes (the broker reuses one per equal decision)
    is serialised once, and the entry is still exactly its canonical JSON."""
    chain = AuditChain("BROKER-1.test", KEY)
    batch = [
        {**fields, "decisions": [pool[i % len(pool)] for i in picks]} for fields, picks in records
    ]
    entry, encoded = chain.append_encoded({"type": "decisions", "records": batch}, T0)
    assert encoded == canonical_json(entry)
    assert entry_hash(json.loads(encoded)) == entry["hash"]


def test_a_nested_decisions_member_does_not_confuse_the_splice() -> None:
    """The shared-record encoding marks the decisions' place with a member; a nested map with the
    same member (or a string quoting it) must not be taken for it."""
    shared = {"recipient": "MLT-AFM", "decision": "allow"}
    batch = [
        {"a": {"decisions": 0}, "decisions": [shared], "z": '"decisions":0'},
        {"decisions": [shared, shared], "note": {"decisions": 0.5}},
    ]
    entry, encoded = AuditChain("BROKER-1.test", KEY).append_encoded({"records": batch}, T0)
    assert encoded == canonical_json(entry)
