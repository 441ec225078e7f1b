"""A complete development federation in memory: root, agencies, keys, signed documents.

``palermo demo``, ``palermo dev up``, the integration tests and the benchmarks all start from
this: the example federation policy in ``policies/examples/`` with fresh keys for every member,
membership certificates signed by a fresh root, key bundles, route subscriptions and the signed
federation and standing policies — exactly the documents an operator would publish with
``palermo directory publish``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from node.ingest import write_token_file
from policies import AgencyPolicy, Federation
from protocol.keys import EncryptionKey, KeyCard, SigningKey, save_private_key
from protocol.trust import (
    REVOCATION_LIST_VALIDITY,
    ROOT,
    MembershipCertificate,
    RevocationList,
    Subscriptions,
    TopicFilter,
    TrustStore,
    bundle_for,
    sign_document,
)
from protocol.view import PolicyStore
from schemas import Route

__all__ = ["DEFAULT_SUBSCRIPTIONS", "EXAMPLES", "DevAgency", "DevFederation"]

EXAMPLES: Final[Path] = Path(__file__).resolve().parent.parent / "policies" / "examples"
_MED: Final[list[Route | str]] = [Route.CENTRAL_MED, Route.EASTERN_MED, Route.WESTERN_MED]
DEFAULT_SUBSCRIPTIONS: Final[Mapping[str, list[Route | str]]] = {
    "med-coastal": _MED,
    "eu-frontex-community": [
        *_MED,
        Route.WESTERN_BALKANS,
        Route.WESTERN_AFRICAN_ATLANTIC,
        Route.AIR,
    ],
    "western-balkans": [Route.WESTERN_BALKANS, Route.EASTERN_MED],
    "bali-process": [Route.SOUTHEAST_ASIA_PACIFIC, Route.BAY_OF_BENGAL, Route.AIR],
}
"""Route topics each group's members subscribe to in the demo; aggregate-only bodies take '*'."""


@dataclass
class DevAgency:
    id: str
    signing: SigningKey
    encryption: EncryptionKey
    certificate: dict[str, Any]
    bundle: dict[str, Any]
    subscriptions: dict[str, Any]
    policy: dict[str, Any] | None = None

    @property
    def card(self) -> KeyCard:
        return KeyCard(self.signing.public, self.encryption.public)


@dataclass
class DevFederation:
    root: SigningKey
    federation: Federation
    signed_policy: dict[str, Any]
    revocations: dict[str, Any]
    broker_key: SigningKey
    agencies: dict[str, DevAgency] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        now: datetime,
        *,
        federation_toml: Path = EXAMPLES / "federation.toml",
        policies_dir: Path | None = EXAMPLES,
        subscriptions: Mapping[str, Iterable[TopicFilter]] | None = None,
        federation: Federation | None = None,
    ) -> DevFederation:
        """``federation`` (already parsed) takes the place of ``federation_toml``."""
        root = SigningKey.generate(ROOT)
        if federation is None:
            federation = Federation.from_toml(federation_toml.read_text())
        dev = cls(
            root=root,
            federation=federation,
            signed_policy=sign_document(federation, root, ROOT),
            # Due again in a week, as 'palermo federation init' makes it (decision 0014).
            revocations=sign_document(
                RevocationList(seq=1, issued=now, next_update=now + REVOCATION_LIST_VALIDITY),
                root,
                ROOT,
            ),
            broker_key=SigningKey.generate("BROKER-1"),
        )
        for serial, member in enumerate(federation.members, start=1):
            signing, enc = SigningKey.generate(member.id), EncryptionKey.generate(member.id)
            cert = MembershipCertificate(
                serial=serial,
                agency=member.id,
                name=member.name,
                country=member.country,
                groups=member.groups,
                accreditation=member.accreditation,
                signing_key=signing.public.raw.hex(),
                not_before=now - timedelta(days=1),
                not_after=now + timedelta(days=365),
            )
            bundle = bundle_for(member.id, [enc.public], now=now, days=90)
            filters = (
                list(subscriptions[member.id])
                if subscriptions is not None and member.id in subscriptions
                else _default_filters(member.groups, member.aggregate_only)
            )
            subs = Subscriptions(agency=member.id, seq=1, issued=now, filters=filters)
            agency = DevAgency(
                member.id,
                signing,
                enc,
                sign_document(cert, root, ROOT),
                sign_document(bundle, signing, member.id),
                sign_document(subs, signing, member.id),
            )
            standing = policies_dir / f"{member.id}.toml" if policies_dir else None
            if standing is not None and standing.is_file():
                doc = AgencyPolicy.from_toml(standing.read_text())
                agency.policy = sign_document(doc, signing, member.id)
            dev.agencies[member.id] = agency
        return dev

    def documents(self) -> list[dict[str, Any]]:
        """Every signed document, in the order a directory takes them."""
        docs: list[dict[str, Any]] = [a.certificate for a in self.agencies.values()]
        docs += [self.revocations, self.signed_policy]
        for a in self._signing_members():
            docs += [a.bundle, a.subscriptions] + ([a.policy] if a.policy else [])
        return docs

    def _signing_members(self) -> list[DevAgency]:
        """Members whose signing key may sign documents now.

        A directory refuses what a revoked or lapsed key signed (decision 0014), so an agency
        whose signing key or membership is revoked, or whose certificate is not valid now,
        contributes only its certificate.
        """
        revoked = {
            (e["agency"], e.get("kid")) for e in self.revocations["document"].get("entries", [])
        }
        now = datetime.now(UTC)
        usable = []
        for a in self.agencies.values():
            cert = MembershipCertificate.model_validate(a.certificate["document"])
            if (a.id, None) in revoked or (a.id, a.signing.kid) in revoked:
                continue
            if cert.not_before <= now < cert.not_after:
                usable.append(a)
        return usable

    def trust_store(self) -> TrustStore:
        store = TrustStore(self.root.public)
        store.load(d for d in self.documents() if "policy" not in d["document"]["kind"])
        return store

    def policy_store(self, trust: TrustStore | None = None) -> PolicyStore:
        trust = trust or self.trust_store()
        view = PolicyStore(self.root.public, trust)
        view.set_federation(self.signed_policy)
        for a in self._signing_members():
            if a.policy is not None:
                view.set_agency_policy(a.policy)
        return view

    def broker_config(self, directory: Path, nats_url: str, **overrides: Any) -> Path:
        """Write keys and documents under ``directory`` and a ``broker.toml`` using them."""
        self.write(directory / "fed")
        settings = {
            "broker_id": "BROKER-1",
            "nats_url": [nats_url],
            "root_key": str(directory / "fed" / "root.pub.json"),
            "signing_key": str(directory / "fed" / "broker.sign.pem"),
            "http_port": 0,
            "dev": True,
            **overrides,
        }
        path = directory / "broker.toml"
        path.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items()))
        return path

    def node_config(self, directory: Path, agency: str, nats_url: str) -> Path:
        """A ``<AGENCY>.node.toml`` using the keys :meth:`write` put under ``directory``."""
        keys = directory / "agencies" / agency
        enc = self.agencies[agency].encryption
        settings = {
            "agency": agency,
            "nats_url": [nats_url],
            "root_key": str(directory / "root.pub.json"),
            # 'palermo status' believes a broker notice only when this key signed it.
            "broker_keys": [str(directory / "broker.pub.json")],
            "signing_key": str(keys / f"{agency}.sign.pem"),
            "encryption_keys": [str(keys / f"{agency}.enc.{enc.kid}.pem")],
            "state_dir": str(directory / "state" / agency),
            # Ingest on loopback (a free port, printed by 'palermo node run') behind a token:
            # curl -H "Authorization: Bearer $(cat <AGENCY>.ingest.token)" (docs/node.md).
            "ingest_port": 0,
            "ingest_token_file": str(directory / f"{agency}.ingest.token"),
            "dev": True,
        }
        write_token_file(directory / f"{agency}.ingest.token")
        path = directory / f"{agency}.node.toml"
        path.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items()))
        return path

    def write(self, directory: Path) -> None:
        """Keys (0600) and signed documents on disk, laid out as the CLI expects."""
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        save_private_key(directory / "root.sign.pem", self.root.private)
        (directory / "root.pub.json").write_text(
            json.dumps({"kid": self.root.kid, "ed25519": self.root.public.raw.hex()}) + "\n"
        )
        save_private_key(directory / "broker.sign.pem", self.broker_key.private)
        (directory / "broker.pub.json").write_text(
            json.dumps({"kid": self.broker_key.kid, "ed25519": self.broker_key.public.raw.hex()})
            + "\n"
        )
        docs = directory / "documents"
        docs.mkdir(exist_ok=True)
        for i, doc in enumerate(self.documents()):
            (docs / f"{i:03d}-{doc['document']['kind']}.json").write_text(json.dumps(doc) + "\n")
        for a in self.agencies.values():
            keys = directory / "agencies" / a.id
            keys.mkdir(parents=True, exist_ok=True, mode=0o700)
            save_private_key(keys / f"{a.id}.sign.pem", a.signing.private)
            save_private_key(keys / f"{a.id}.enc.{a.encryption.kid}.pem", a.encryption.private)
            (keys / f"{a.id}.pub.json").write_text(a.card.to_json() + "\n")


def _default_filters(groups: Iterable[str], aggregate_only: bool) -> list[TopicFilter]:
    if aggregate_only:
        return [TopicFilter(route="*", kinds=["statistics"])]
    routes: list[Route | str] = []
    for group in groups:
        for route in DEFAULT_SUBSCRIPTIONS.get(group, []):
            if route not in routes:
                routes.append(route)
    return [TopicFilter(route=Route(r)) for r in routes]
