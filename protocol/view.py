"""The live policy view the broker and nodes decide with: signed policies, verified, compiled.

It takes signed documents from the directory (``policy.federation`` signed by the federation
root, ``policy.agency.<AGENCY>`` signed by that agency) and keeps the last good version of each:
a document that fails verification is refused and the previous one stays in force. Until a
federation policy has been verified, every decision is a denial (deny by default).

Versions only go up (the trust store's high-water marks, ``protocol.marks``): an older policy,
or a different one under the version in force, is refused as a rollback, and a standing policy
is only taken from its own key, ``policy.agency.<its agency>``. Two gaps deny instead of
guessing: no revocation list at or above the mark (running on an older one would un-revoke
keys), and an originator whose standing policy was seen once but is missing now.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from policies import (
    AgencyPolicy,
    Decision,
    Federation,
    FederationIndex,
    FederationRules,
    Reason,
    compile_federation,
    decide_all,
)
from protocol.marks import AGENCY_PREFIX, FEDERATION_KEY, REVOCATIONS_KEY, check_key, digest
from schemas import EnvelopeHeader
from schemas.errors import PalermoError, TrustError

from .trust import ROOT, TrustStore, verify_document

__all__ = ["AGENCY_PREFIX", "FEDERATION_KEY", "PolicyStore"]


class PolicyStore:
    """Decides with the newest verified federation policy and standing policies."""

    def __init__(self, root: Any, trust: TrustStore) -> None:
        self.root = root
        self.trust = trust
        self.federation: Federation | None = None
        self.index: FederationIndex | None = None
        self.agency_policies: dict[str, AgencyPolicy] = {}
        self.rejected: dict[str, str] = {}
        # The signing kid behind each standing policy held: when the trust store drops that
        # key (replaced or revoked), the policy it signed goes too (decide() then denies).
        self._policy_signers: dict[str, str] = {}
        trust.on_drop(self._signer_dropped)

    def _signer_dropped(self, agency: str, kid: str | None) -> None:
        if self._policy_signers.get(agency) is not None and kid in (
            None,
            self._policy_signers[agency],
        ):
            del self._policy_signers[agency]
            self.agency_policies.pop(agency, None)

    @property
    def ready(self) -> bool:
        return self.index is not None and self.revocations_current

    @property
    def revocations_current(self) -> bool:
        """A revocation list at or above the high-water mark is held (or none was ever seen)."""
        mark = self.trust.marks.get(REVOCATIONS_KEY)
        return mark is None or self.trust.revocation_seq >= mark.version

    def set_federation(self, signed: Mapping[str, Any]) -> Federation:
        federation = verify_document(signed, Federation, self.root, ROOT)
        # Older, or different under the version in force: refused (also across restarts).
        marks, fed_digest = self.trust.marks, digest(federation)
        marks.check(FEDERATION_KEY, federation.version, fed_digest, "federation policy")
        self.federation, self.index = federation, compile_federation(federation)
        marks.raise_to(FEDERATION_KEY, federation.version, fed_digest)
        return federation

    def set_agency_policy(self, signed: Mapping[str, Any]) -> AgencyPolicy:
        # Signed by the agency's current key, neither revoked nor out of its validity.
        cert = self.trust.document_signer(signed, "standing policy")
        policy = verify_document(signed, AgencyPolicy, cert.public_signing_key, cert.agency)
        # Without this check any member could re-publish another agency's older, looser
        # standing policy (a valid signature for ever) and the originator's own node would
        # seal for partners its current policy denies.
        key, policy_digest = AGENCY_PREFIX + policy.agency, digest(policy)
        self.trust.marks.check(key, policy.version, policy_digest, "standing policy")
        self.agency_policies[policy.agency] = policy
        self._policy_signers[policy.agency] = cert.public_signing_key.kid
        self.trust.marks.raise_to(key, policy.version, policy_digest)
        return policy

    def apply(self, key: str, signed: Mapping[str, Any]) -> None:
        """Directory listener: take policy documents, ignore the rest, keep the last good one."""
        if key != FEDERATION_KEY and not key.startswith(AGENCY_PREFIX):
            return
        try:
            # The key must be the document's own: never file one agency's policy under another.
            check_key(key, signed)
            if key == FEDERATION_KEY:
                self.set_federation(signed)
            elif key.startswith(AGENCY_PREFIX):
                self.set_agency_policy(signed)
            else:
                return
        except PalermoError as exc:
            self.rejected[key] = exc.reason
            return
        self.rejected.pop(key, None)

    @property
    def rules(self) -> FederationRules:
        """The federation-wide rules in force (the defaults until a policy is held)."""
        return self.federation.rules if self.federation is not None else FederationRules()

    def decide(self, header: EnvelopeHeader, recipient: str, now: datetime) -> Decision:
        return self.decide_all(header, [recipient], now, explain_allowed=True)[recipient]

    def decide_all(
        self,
        header: EnvelopeHeader,
        recipients: Sequence[str],
        now: datetime,
        *,
        explain_allowed: bool = False,
    ) -> dict[str, Decision]:
        """:meth:`decide` for each recipient, in order, with the per-header checks done once.

        ``explain_allowed=False`` (the broker's default: it audits an allowance by its codes)
        leaves the words out of an allowed decision's summary; refusals always have them.
        """
        gate = self._gate()
        if gate is not None:
            return {r: Decision(r, False, (gate,)) for r in recipients}
        out: dict[str, Decision] = {}
        certified: list[str] = []
        for recipient in recipients:
            try:
                # Membership is also a matter of certificates: a revoked or expired member
                # receives nothing, whatever the policy document says.
                self.trust.certificate(recipient, now)
            except TrustError as exc:
                out[recipient] = Decision(
                    recipient, False, (Reason("recipient-not-certified", exc.reason),)
                )
                continue
            out[recipient] = _PENDING
            certified.append(recipient)
        if not certified:
            return out
        standing = self.agency_policies.get(header.originator)
        if standing is None and self.trust.marks.get(AGENCY_PREFIX + header.originator):
            # Its standing policy was seen once and is gone (refused as below its mark, or
            # dropped): deciding without it would ignore restrictions the originator set.
            missing = Reason(
                "standing-policy-missing",
                f"{header.originator}'s standing policy is not held at or above the version "
                f"already seen; {header.originator} must publish its current standing policy",
            )
            return out | {r: Decision(r, False, (missing,)) for r in certified}
        assert self.index is not None  # _gate refuses without one
        return out | decide_all(
            header, certified, self.index, standing, now, explain_allowed=explain_allowed
        )

    def _gate(self) -> Reason | None:
        """Why nothing may be decided now, whatever the header or recipient."""
        if self.index is None:
            return Reason(
                "no-federation-policy",
                "no verified federation policy is in force; "
                "publish one signed by the federation root",
            )
        if not self.revocations_current:
            mark = self.trust.marks.get(REVOCATIONS_KEY)
            return Reason(
                "revocations-below-mark",
                f"the revocation list held (seq {self.trust.revocation_seq}) is older "
                f"than seq {mark.version if mark else 0} already seen; publish the "
                "current list ('palermo directory publish')",
            )
        return None


# A placeholder keeping each recipient's place in decide_all's answer until the engine fills it.
_PENDING = Decision("", False, ())
