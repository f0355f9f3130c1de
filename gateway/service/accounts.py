"""Accounts: sign up, log in (argon2id), bearer tokens (only their hash is
kept), log out (revokes), the caller's profile."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime

import argon2

from cronfleet.codec import rows
from cronfleet.errors import Conflict, InvalidArgument, Unauthenticated
from cronfleet.models import Notify, validate_notify
from cronfleet.records import User
from gateway.service.base import ServiceBase

_hasher = argon2.PasswordHasher()  # argon2id with the library's current defaults


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class Accounts(ServiceBase):
    async def signup(self, name: str, email: str, password: str) -> User:
        name, email = (name or "").strip(), (email or "").strip().lower()
        if not name:
            raise InvalidArgument("is required", field="name")
        if "@" not in email or len(email) > 320:
            raise InvalidArgument("must be an email address", field="email")
        if len(password or "") < 8:
            raise InvalidArgument("must be at least 8 characters", field="password")
        try:
            row = await self.db.fetch_one(
                "create_user",
                {"id": uuid.uuid4(), "name": name, "email": email, "password_hash": _hasher.hash(password)},
            )
        except Conflict as exc:
            raise Conflict("an account with this email exists", field="email") from exc
        assert row is not None
        return rows.user_from_row(row)

    async def login(self, email: str, password: str) -> tuple[str, datetime]:
        row = await self.db.fetch_one("user_by_email", {"email": (email or "").strip().lower()})
        try:
            if row is None:
                raise argon2.exceptions.VerifyMismatchError
            _hasher.verify(row["password_hash"], password or "")
        except argon2.exceptions.VerificationError as exc:
            raise Unauthenticated("wrong email or password") from exc
        token = "cf_" + secrets.token_urlsafe(32)
        expires = datetime.now(UTC) + self.token_ttl
        await self.db.execute(
            "create_token",
            {"token_hash": token_hash(token), "user_id": row["id"], "expires_at": expires},
        )
        return token, expires

    async def authenticate(self, token: str | None) -> User:
        if not token:
            raise Unauthenticated("missing bearer token")
        row = await self.db.fetch_one("user_by_token", {"token_hash": token_hash(token)})
        if row is None:
            raise Unauthenticated("invalid, expired or revoked token")
        return rows.user_from_row(row)

    async def logout(self, token: str) -> None:
        await self.db.execute("revoke_token", {"token_hash": token_hash(token)})

    async def update_me(
        self,
        user: User,
        name: str | None,
        email: str | None,
        password: str | None,
        notify: tuple[Notify, ...] | None = None,
    ) -> User:
        """Change the named profile fields (None: unchanged). ``notify`` is the
        default for the user's jobs that set none."""
        if notify is not None:
            validate_notify(notify)
        if name is not None and not name.strip():
            raise InvalidArgument("must not be empty", field="name")
        if email is not None and "@" not in email:
            raise InvalidArgument("must be an email address", field="email")
        if password is not None and len(password) < 8:
            raise InvalidArgument("must be at least 8 characters", field="password")
        try:
            row = await self.db.fetch_one(
                "update_user",
                {
                    "id": user.id,
                    "name": name.strip() if name else None,
                    "email": email.strip().lower() if email else None,
                    "password_hash": _hasher.hash(password) if password else None,
                    "notify": rows.notify_param(notify) if notify is not None else None,
                },
            )
        except Conflict as exc:
            raise Conflict("an account with this email exists", field="email") from exc
        assert row is not None
        return rows.user_from_row(row)
