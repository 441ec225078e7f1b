"""``palermo agency init --pq``: a hybrid (ML-KEM-768 + X25519) first key, end to end."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from protocol.keys import EncryptionKey, HybridPrivateKey, load_private_key
from protocol.settings import load_root_public
from protocol.trust import TrustStore
from tests.trust.test_federation_cli import AGENCY, _admit, _agency, _init, _read


def test_agency_init_pq_publishes_a_hybrid_key_that_loads_and_seals(tmp_path: Path) -> None:
    fed, agency_dir = tmp_path / "fed", tmp_path / "agency"
    _init(fed)
    request = _agency(agency_dir, AGENCY, "--pq")
    assert 0 == _admit(fed, request).exit_code
    trust = TrustStore(load_root_public(fed / "root.pub.json"))
    trust.load(
        [
            _read(agency_dir / f"{AGENCY}.bundle.json"),
            _read(fed / "revocations.json"),
            _read(fed / "members" / f"{AGENCY}.cert.json"),
        ]
    )
    (public,) = trust.encryption_keys(AGENCY, datetime.now(UTC))
    assert public.hybrid
    (key_file,) = agency_dir.glob(f"{AGENCY}.enc.*.pem")
    assert key_file.name == f"{AGENCY}.enc.{public.kid}.pem"
    private = load_private_key(key_file)
    assert isinstance(private, HybridPrivateKey)
    assert public.kid == EncryptionKey.from_private(AGENCY, private).kid
    # The membership request names the X25519 part, as before.
    assert public.raw.hex() == _read(request)["document"]["encryption_key"]


def test_agency_init_without_pq_stays_x25519(tmp_path: Path) -> None:
    agency_dir = tmp_path / "agency"
    _agency(agency_dir, AGENCY)
    (key_file,) = agency_dir.glob(f"{AGENCY}.enc.*.pem")
    assert not isinstance(load_private_key(key_file), HybridPrivateKey)
