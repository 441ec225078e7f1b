"""The live policy view the broker and nodes decide with: signed policies, verified, compiled.

It takes signed documents from the directory (``policy.federation`` signed by the federation
root, ``policy.agency.<AGENCY>`` signed by that agency) and keeps the last good version of each:
a document that fails verification is refused and the previous one stays in force. Until a
federation policy has been verified, every decision is a denial (deny by default).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from schemas import EnvelopeHeader
from schemas.errors import PalermoError, TrustError

from ._agency_policy import AgencyPolicy
from ._decision import Decision, Reason
from ._engine import decide
from ._federation import Federation
from ._index import FederationIndex, compile_federation
from .trust import ROOT, TrustStore, verify_document

__all__ = ["FEDERATION_KEY", "PolicyStore"]

FEDERATION_KEY: Final[str] = "policy.federation"
AGENCY_PREFIX: Final[str] = "policy.agency."


class PolicyStore:
    """Decides with the newest verified federation policy and standing policies."""

    def __init__(self, root: Any, trust: TrustStore) -> None:
        self.root = root
        self.trust = trust
        self.federation: Federation | None = None
        self.index: FederationIndex | None = None
        self.agency_policies: dict[str, AgencyPolicy] = {}
        self.rejected: dict[str, str] = {}

    @property
    def ready(self) -> bool:
        return self.index is not None

    def set_federation(self, signed: Mapping[str, Any]) -> Federation:
        federation = verify_document(signed, Federation, self.root, ROOT)
        if self.federation is not None and federation.version < self.federation.version:
            raise TrustError(
                f"federation policy version {federation.version} is older than the one in force "
                f"({self.federation.version}); a rollback is refused"
            )
        self.federation, self.index = federation, compile_federation(federation)
        return federation

    def set_agency_policy(self, signed: Mapping[str, Any]) -> AgencyPolicy:
        document = signed.get("document")
        agency = document.get("agency") if isinstance(document, Mapping) else None
        cert = self.trust.members.get(agency) if isinstance(agency, str) else None
        if cert is None:
            raise TrustError(f"standing policy of {agency!r}, which has no membership certificate")
        policy = verify_document(signed, AgencyPolicy, cert.public_signing_key, cert.agency)
        self.agency_policies[policy.agency] = policy
        return policy

    def apply(self, key: str, signed: Mapping[str, Any]) -> None:
        """Directory listener: take policy documents, ignore the rest, keep the last good one."""
        try:
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

    def decide(self, header: EnvelopeHeader, recipient: str, now: datetime) -> Decision:
        if self.index is None:
            return Decision(
                recipient,
                False,
                (
                    Reason(
                        "no-federation-policy",
                        "no verified federation policy is in force; "
                        "publish one signed by the federation root",
                    ),
                ),
            )
        try:
            # Membership is also a matter of certificates: a revoked or expired member receives
            # nothing, whatever the policy document says.
            self.trust.certificate(recipient, now)
        except TrustError as exc:
            return Decision(recipient, False, (Reason("recipient-not-certified", exc.reason),))
        return decide(
            header, recipient, self.index, self.agency_policies.get(header.originator), now
        )
