"""A development PKI for a rendered federation: one CA, server and client certificates.

Made with ``cryptography``'s x509 (ECDSA P-256, SHA-256). Real deployments plug in their own
PKI: every path the rendered configs name can be replaced by a certificate from it, as long as
server certificates carry the hosts clients dial in their SAN and client certificates are
signed by a CA the servers trust (``docs/operations.md``).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CertPair", "DevCA", "write_private"]

CA_DAYS: Final[int] = 3650
LEAF_DAYS: Final[int] = 825  # the CA/Browser Forum ceiling; short enough to force a rotation plan
_CLOCK_SKEW: Final[timedelta] = timedelta(minutes=5)


def write_private(path: Path, data: bytes) -> None:
    """Write a secret file readable by its owner only (0600), even if it existed before."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)  # O_CREAT's mode does not apply to an existing file
        f.write(data)


@dataclass(frozen=True)
class CertPair:
    """Where a certificate and its private key were written."""

    cert: Path
    key: Path


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _san(hosts: Iterable[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):  # ordered, no duplicates
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


class DevCA:
    """A self-signed CA that issues the federation's server and client certificates."""

    def __init__(self, name: str, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Palermo federation"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"{name} development CA"),
            ]
        )
        public = self.key.public_key()
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now - _CLOCK_SKEW)
            .not_valid_after(self.now + timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self.key, hashes.SHA256())
        )

    def write(self, cert_path: Path, key_path: Path) -> CertPair:
        cert_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        write_private(key_path, _key_pem(self.key))
        return CertPair(cert_path, key_path)

    def issue(
        self,
        common_name: str,
        out: Path,
        *,
        hosts: Iterable[str] = (),
        server: bool = False,
        client: bool = False,
    ) -> CertPair:
        """A certificate for ``common_name`` at ``out``.pem with its key at ``out``.key (0600).

        A server certificate carries ``hosts`` (DNS names and IP addresses) as its SAN; both
        usages may be set, since cluster routes and leafnode remotes are TLS clients too.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        usages = [ExtendedKeyUsageOID.SERVER_AUTH] if server else []
        usages += [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now - _CLOCK_SKEW)
            .not_valid_after(self.now + timedelta(days=LEAF_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        hosts = list(hosts)
        if hosts:
            builder = builder.add_extension(_san(hosts), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        pair = CertPair(out.with_suffix(".pem"), out.with_suffix(".key"))
        pair.cert.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        write_private(pair.key, _key_pem(key))
        return pair


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    """A CA signs certificates and CRLs; a leaf signs and agrees keys (ECDHE in TLS)."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not ca,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )
