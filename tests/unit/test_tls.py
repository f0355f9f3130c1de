"""The local CA and per-role certificates `cronfleet up` makes (cronfleet.tls),
and the settings that turn internal TLS on and off."""

from __future__ import annotations

import dataclasses
import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cronfleet import rpc, tls
from cronfleet.config import Settings


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_each_role_gets_a_certificate_of_the_ca_for_every_local_name_and_the_hosts(tmp_path: Path) -> None:
    files = tls.ensure_local_pki(tmp_path / "tls", hosts=["scheduler-1", "10.0.0.7"])
    assert set(files) == set(tls.ROLES)
    ca = load(files["worker"].ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for role, f in files.items():
        cert = load(f.cert)
        cert.verify_directly_issued_by(ca)
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == f"cronfleet-{role}"
        assert tls.names_of(cert) == {"localhost", "127.0.0.1", "::1", "scheduler-1", "10.0.0.7"}
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH} <= set(usage)
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert stat.S_IMODE(f.key.stat().st_mode) == 0o600, "a key is its owner's only"
    assert stat.S_IMODE((tmp_path / "tls").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "tls" / "ca.key").stat().st_mode) == 0o600


def test_what_is_valid_is_reused_and_what_is_not_is_remade(tmp_path: Path) -> None:
    d = tmp_path / "tls"
    first = tls.ensure_local_pki(d)
    kept = {p: p.read_bytes() for f in first.values() for p in (f.ca, f.cert, f.key)}
    tls.ensure_local_pki(d)
    assert {p: p.read_bytes() for p in kept} == kept, "a second start reuses everything"

    tls.ensure_local_pki(d, hosts=["worker-2"])  # a new name: leaves remade, the CA kept
    assert first["worker"].ca.read_bytes() == kept[first["worker"].ca]
    assert first["worker"].cert.read_bytes() != kept[first["worker"].cert]
    assert "worker-2" in tls.names_of(load(first["worker"].cert))

    # A leaf some other CA signed (or a damaged one) is remade by ours.
    other = tls.ensure_local_pki(tmp_path / "other")
    first["gateway"].cert.write_bytes(other["gateway"].cert.read_bytes())
    first["gateway"].key.write_bytes(other["gateway"].key.read_bytes())
    first["scheduler"].cert.write_text("not a certificate")
    tls.ensure_local_pki(d, hosts=["worker-2"])
    ca = load(first["gateway"].ca)
    load(first["gateway"].cert).verify_directly_issued_by(ca)
    load(first["scheduler"].cert).verify_directly_issued_by(ca)


def test_a_ca_near_its_end_is_remade_with_every_certificate(tmp_path: Path) -> None:
    d = tmp_path / "tls"
    files = tls.ensure_local_pki(d)
    old_ca = files["worker"].ca.read_bytes()
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=tls.CA_DAYS) - tls.RENEW_BEFORE / 2
    tls.ensure_local_pki(d, now=later)
    assert files["worker"].ca.read_bytes() != old_ca
    load(files["worker"].cert).verify_directly_issued_by(load(files["worker"].ca))


def test_a_leaf_never_outlives_its_ca() -> None:
    now = dt.datetime.now(dt.UTC)
    ca, key = tls.make_ca(now=now)
    cert, _ = tls.make_certificate(ca, key, "worker", now=now, days=tls.CA_DAYS * 2)
    assert cert.not_valid_after_utc <= ca.not_valid_after_utc


def test_role_of_reads_the_common_name() -> None:
    assert tls.role_of(tls.common_name("worker")) == "worker"
    assert tls.role_of("worker") is None


def test_internal_tls_is_on_unless_said_off_and_names_what_is_missing(tmp_path: Path) -> None:
    assert Settings().internal_tls
    for off in ("off", "false", "0", "no"):
        assert not Settings.from_env({"CRONFLEET_INTERNAL_TLS": off}).internal_tls
        assert rpc.InternalTls.from_settings(Settings.from_env({"CRONFLEET_INTERNAL_TLS": off})) is None
    assert Settings.from_env({"CRONFLEET_INTERNAL_TLS": "on"}).internal_tls
    with pytest.raises(ValueError, match="internal_tls"):
        Settings.from_env({"CRONFLEET_INTERNAL_TLS": "maybe"})
    with pytest.raises(rpc.TlsNotConfigured, match="CRONFLEET_TLS_CERT, CRONFLEET_TLS_KEY") as err:
        rpc.InternalTls.from_settings(Settings(tls_ca="/x/ca.pem"))
    assert "CRONFLEET_INTERNAL_TLS=off" in str(err.value)
    files = tls.ensure_local_pki(tmp_path)["worker"]
    settings = dataclasses.replace(
        Settings(), tls_ca=str(files.ca), tls_cert=str(files.cert), tls_key=str(files.key)
    )
    loaded = rpc.InternalTls.from_settings(settings)
    assert loaded is not None and loaded.cert == files.cert.read_bytes()
    assert "PRIVATE KEY" not in repr(loaded)
