"""A local certificate authority: the stand-in for AWS IoT's CA-signed device certificates.

mosquitto trusts exactly this CA (``require_certificate true``), and takes the client certificate's
common name as the user name, so the CN of each issued certificate *is* the identity the ACL sees.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_VALIDITY = dt.timedelta(days=3650)


@dataclass(frozen=True)
class IssuedCertificate:
    """Paths of one issued identity; ``cert_pem`` is kept for registering it with IoT."""

    common_name: str
    cert_path: Path
    key_path: Path
    ca_path: Path
    cert_pem: str


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(0o600)


class CertificateAuthority:
    """Creates (once) and loads a CA under ``root``; issues server and client certificates.

    EC P-256 keys keep generation in the low milliseconds, which matters for start-up time.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ca_path = root / "ca.pem"
        self._key_path = root / "ca.key"
        if not self.ca_path.exists() or not self._key_path.exists():
            self._create()
        self._key = serialization.load_pem_private_key(self._key_path.read_bytes(), password=None)
        self._cert = x509.load_pem_x509_certificate(self.ca_path.read_bytes())

    def _create(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mlops-edge local CA")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        _write_private(
            self._key_path,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        self.ca_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, common_name: str, directory: Path, *, server: bool = False) -> IssuedCertificate:
        """Issue (or reuse, when already on disk) a key pair + certificate for ``common_name``."""
        cert_path = directory / "cert.pem"
        key_path = directory / "private.key"
        if cert_path.exists() and key_path.exists():
            return IssuedCertificate(common_name, cert_path, key_path, self.ca_path, cert_path.read_text())
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        cert = builder.sign(self._key, hashes.SHA256())  # type: ignore[arg-type]
        _write_private(
            key_path,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        cert_path.write_text(pem)
        return IssuedCertificate(common_name, cert_path, key_path, self.ca_path, pem)
