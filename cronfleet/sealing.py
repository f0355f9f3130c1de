"""Secret env values sealed at rest: AES-256-GCM (``cryptography``) under
the cluster's key (``CRONFLEET_SECRET_KEY`` or ``..._FILE``).

The gateway seals a value marked secret before the job is written
(:func:`seal_env`); the scheduler opens it when it hands a run to a worker,
over mutual TLS (:func:`open_env`); no reply shows it (the codecs print
``"***"``). A sealed value is bound to its job and variable name (the
cipher's associated data): copied into another job's row, or under another
name, it does not open. Stored form: ``v1.<key id>.<base64url(nonce,
ciphertext and tag)>``; the key id (a hash of the key, not the key) says
which key sealed it, so a scheduler with another key says so.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import os
import uuid
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cronfleet.config import Settings
from cronfleet.errors import InvalidSpec
from cronfleet.models import JobSpec, Secret

KEY_BYTES = 32
NONCE_BYTES = 12
VERSION = "v1"


class SealingError(Exception):
    """A sealed value that cannot be opened here (no key, another key, or
    not what was sealed); the message names the variable, never a value."""


@dataclasses.dataclass(frozen=True, repr=False)
class SecretKey:
    """The key secret env values are sealed with."""

    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != KEY_BYTES:
            raise ValueError(f"a secret key is {KEY_BYTES} bytes, got {len(self.raw)}")

    def __repr__(self) -> str:
        return f"SecretKey(id={self.id})"

    @classmethod
    def generate(cls) -> SecretKey:
        return cls(AESGCM.generate_key(bit_length=KEY_BYTES * 8))

    @classmethod
    def parse(cls, text: str) -> SecretKey:
        """From its text form: 32 bytes in URL-safe base64 (as :meth:`encoded`)."""
        try:
            raw = base64.urlsafe_b64decode(text.strip().encode())
        except (binascii.Error, ValueError) as exc:
            raise ValueError("the secret key is not URL-safe base64") from exc
        return cls(raw)

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretKey | None:
        """The key the settings give (``secret_key``, else the file
        ``secret_key_file`` names), or None. Raises ValueError naming the
        setting when it is not a key."""
        try:
            if settings.secret_key:
                return cls.parse(settings.secret_key)
            if settings.secret_key_file:
                return cls.parse(Path(settings.secret_key_file).read_text())
        except (OSError, ValueError) as exc:
            which = "CRONFLEET_SECRET_KEY" if settings.secret_key else "CRONFLEET_SECRET_KEY_FILE"
            raise ValueError(f"{which}: {exc}") from exc
        return None

    def encoded(self) -> str:
        return base64.urlsafe_b64encode(self.raw).decode()

    @property
    def id(self) -> str:
        return hashlib.sha256(b"cronfleet secret key id\0" + self.raw).hexdigest()[:8]

    def digest(self, plaintext: str) -> str:
        """A keyed digest (HMAC-SHA256 under a key derived from this one): tells
        two values apart, and nothing about either without the key."""
        subkey = hashlib.sha256(b"cronfleet digest key\0" + self.raw).digest()
        return hmac.new(subkey, plaintext.encode(), hashlib.sha256).hexdigest()

    def seal(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.raw).encrypt(nonce, plaintext.encode(), context.encode())
        return f"{VERSION}.{self.id}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, sealed: str, context: str) -> str:
        version, key_id, body = (sealed.split(".", 2) + ["", ""])[:3]
        if version != VERSION:
            raise SealingError(f"not a sealed value of this version ({version!r})")
        if key_id != self.id:
            raise SealingError(f"sealed with key {key_id}; this process has key {self.id}")
        try:
            data = base64.urlsafe_b64decode(body.encode())
            plain = AESGCM(self.raw).decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], context.encode())
        except (binascii.Error, ValueError, InvalidTag) as exc:
            raise SealingError("does not open: not sealed for this job and name, or altered") from exc
        return plain.decode()


def _context(job_id: uuid.UUID, name: str) -> str:
    return f"cronfleet/job/{job_id}/env/{name}"


def ensure_key_file(path: Path) -> Path:
    """A key file at ``path``, made (readable by its owner only) when there is
    none, checked when there is."""
    if path.exists():
        SecretKey.parse(path.read_text())
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(SecretKey.generate().encoded() + "\n")
    return path


def seal_env(
    spec: JobSpec, key: SecretKey | None, job_id: uuid.UUID, stored: JobSpec | None = None
) -> JobSpec:
    """``spec`` as it may be stored: every secret value sealed for ``job_id``.
    A secret sent as ``"***"`` takes the value ``stored`` (the job as it is,
    on an update) has under that name. Raises InvalidSpec naming the variable
    when there is no such value, or no key to seal with."""
    if not any(isinstance(v, Secret) for v in spec.env.values()):
        return spec
    env: dict[str, str | Secret] = {}
    for name, value in spec.env.items():
        if not isinstance(value, Secret) or value.sealed is not None:
            env[name] = value
        elif value.value is None:  # "***": keep what is stored
            kept = stored.env.get(name) if stored is not None else None
            if not isinstance(kept, Secret) or kept.sealed is None:
                raise InvalidSpec(
                    '"***" stands for the secret value this job has stored under this name, and it has '
                    "none: send the value",
                    field=f"env.{name}",
                )
            env[name] = Secret(sealed=kept.sealed)
        elif key is None:
            raise _no_key(name)
        else:
            env[name] = Secret(sealed=key.seal(value.value, _context(job_id, name)))
    return dataclasses.replace(spec, env=env)


def _no_key(name: str) -> InvalidSpec:
    return InvalidSpec(
        "this gateway has no secret key to seal secret values with (CRONFLEET_SECRET_KEY or "
        "CRONFLEET_SECRET_KEY_FILE); nothing was stored",
        field=f"env.{name}",
    )


def fingerprint_env(spec: JobSpec, key: SecretKey | None) -> dict[str, str]:
    """The env as an idempotency fingerprint sees it: a secret by its keyed
    digest, so that two requests differing only in a secret differ, while
    the stored fingerprint says nothing of it. Raises InvalidSpec as
    :func:`seal_env` would when there is no key."""
    out = {}
    for name, value in spec.env.items():
        if not isinstance(value, Secret):
            out[name] = value
        elif value.value is None:
            out[name] = "***"
        elif key is None:
            raise _no_key(name)
        else:
            out[name] = "secret:" + key.digest(value.value)
    return out


def open_env(spec: JobSpec, key: SecretKey | None, job_id: uuid.UUID) -> JobSpec:
    """``spec`` with every sealed value opened, for a run. Raises SealingError
    naming the variable that does not open."""
    if not any(isinstance(v, Secret) for v in spec.env.values()):
        return spec
    env: dict[str, str | Secret] = {}
    for name, value in spec.env.items():
        if not isinstance(value, Secret):
            env[name] = value
            continue
        if value.sealed is None:
            raise SealingError(f"env {name}: no sealed value stored")
        if key is None:
            raise SealingError(
                f"env {name}: this scheduler has no secret key (CRONFLEET_SECRET_KEY or "
                "CRONFLEET_SECRET_KEY_FILE) to open it"
            )
        try:
            env[name] = Secret(value=key.open(value.sealed, _context(job_id, name)))
        except SealingError as exc:
            raise SealingError(f"env {name}: {exc}") from None
    return dataclasses.replace(spec, env=env)
