"""Certificates for internal gRPC over mutual TLS, made with ``cryptography``.

``cronfleet up`` keeps a small private CA in its state dir (``tls/``) and one
certificate per role signed by it. Every role presents its own certificate
and accepts only peers presenting one the same CA signed
(:mod:`cronfleet.rpc`). :func:`ensure_local_pki` reuses what it finds while
it is valid (signed by that CA, not near its end, naming every host asked
for) and remakes what is not. A certificate names its role in its common
name (``cronfleet-worker``), which servers check: a scheduler streams
assignments, and so secret env values, to workers only.

Keys are ECDSA P-256: small, and a handshake costs far less than with RSA.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROLES = ("coordinator", "scheduler", "worker", "gateway")
# Every certificate names these, so a local cluster and tests dial by either.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
CA_DAYS = 3650
CERT_DAYS = 397  # what public CAs may issue at most; remade long before it ends
RENEW_BEFORE = dt.timedelta(days=30)  # a certificate this close to its end is remade
CLOCK_SKEW = dt.timedelta(minutes=5)  # valid from a little before now: peers' clocks differ
_ROLE_PREFIX = "cronfleet-"

Key = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class TlsFiles:
    """Where one process's TLS material is: the CA to trust, and its own
    certificate and key (PEM)."""

    ca: Path
    cert: Path
    key: Path

    def env(self) -> dict[str, str]:
        """As the settings a role reads them."""
        return {
            "CRONFLEET_TLS_CA": str(self.ca),
            "CRONFLEET_TLS_CERT": str(self.cert),
            "CRONFLEET_TLS_KEY": str(self.key),
        }


def common_name(role: str) -> str:
    return _ROLE_PREFIX + role


def role_of(name: str) -> str | None:
    """The role a certificate's common name says (``cronfleet-worker`` -> ``worker``)."""
    return name[len(_ROLE_PREFIX) :] if name.startswith(_ROLE_PREFIX) else None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _new_key() -> Key:
    return ec.generate_private_key(ec.SECP256R1())


def make_ca(name: str = "cronfleet local CA", now: dt.datetime | None = None) -> tuple[x509.Certificate, Key]:
    """A self-signed CA that may sign leaf certificates only (path length 0)."""
    now = now or _now()
    key = _new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def make_certificate(
    ca_cert: x509.Certificate,
    ca_key: Key,
    role: str,
    hosts: Iterable[str] = LOCAL_HOSTS,
    now: dt.datetime | None = None,
    days: int = CERT_DAYS,
) -> tuple[x509.Certificate, Key]:
    """A certificate for ``role``, good as a server (for every name in
    ``hosts``: DNS names and IP addresses) and as a client."""
    now = now or _now()
    key = _new_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name(role))]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.SubjectAlternativeName([_general_name(h) for h in _unique(hosts)]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _unique(hosts: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(h.strip() for h in hosts if h.strip()))


def names_of(cert: x509.Certificate) -> set[str]:
    """The DNS names and IP addresses a certificate is good for."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    ips = san.get_values_for_type(x509.IPAddress)
    return {*san.get_values_for_type(x509.DNSName), *(str(ip) for ip in ips)}


# ------------------------------------------------------------------ files
def ensure_local_pki(
    directory: Path, hosts: Iterable[str] = (), roles: Iterable[str] = ROLES, now: dt.datetime | None = None
) -> dict[str, TlsFiles]:
    """A CA and one certificate per role in ``directory``, made or reused.

    Each certificate names LOCAL_HOSTS and ``hosts``. What is there is kept
    while it is valid; a CA that is not is remade, and with it every
    certificate. Keys are written readable by their owner only.
    """
    now = now or _now()
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    wanted = _unique([*LOCAL_HOSTS, *hosts])
    ca_path, ca_key_path = directory / "ca.pem", directory / "ca.key"
    ca = _load_valid_ca(ca_path, ca_key_path, now)
    if ca is None:
        ca = make_ca(now=now)
        _write(ca_path, ca_key_path, *ca)
    found = {}
    for role in roles:
        files = TlsFiles(ca_path, directory / f"{role}.pem", directory / f"{role}.key")
        if not _leaf_is_valid(files, ca[0], role, wanted, now):
            _write(files.cert, files.key, *make_certificate(ca[0], ca[1], role, wanted, now))
        found[role] = files
    return found


def _write(cert_path: Path, key_path: Path, cert: x509.Certificate, key: Key) -> None:
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    # Created owner-only: the key is never readable by others, not even for a moment.
    key_path.unlink(missing_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


def _load(cert_path: Path, key_path: Path) -> tuple[x509.Certificate, Key] | None:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        return None
    return cert, key


def _fresh(cert: x509.Certificate, now: dt.datetime) -> bool:
    return cert.not_valid_before_utc <= now and now + RENEW_BEFORE < cert.not_valid_after_utc


def _load_valid_ca(cert_path: Path, key_path: Path, now: dt.datetime) -> tuple[x509.Certificate, Key] | None:
    found = _load(cert_path, key_path)
    if found is None or not _fresh(found[0], now):
        return None
    try:
        is_ca = found[0].extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return None
    return found if is_ca else None


def _leaf_is_valid(
    files: TlsFiles, ca: x509.Certificate, role: str, hosts: list[str], now: dt.datetime
) -> bool:
    found = _load(files.cert, files.key)
    if found is None:
        return False
    cert = found[0]
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return (
        _fresh(cert, now)
        and bool(cn)
        and cn[0].value == common_name(role)
        and {str(_general_name(h).value) for h in hosts} <= names_of(cert)
    )
