"""Accounts: sign up, log in (argon2id), bearer tokens (only their hash is
kept), log out (revokes), the caller's profile."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import secrets
import uuid
from datetime import UTC, datetime

import argon2

from cronfleet.codec import rows
from cronfleet.errors import Conflict, InvalidArgument, Unauthenticated
from cronfleet.models import Notify, check_text, storable, validate_notify
from cronfleet.records import User
from gateway.service.base import ServiceBase
from gateway.service.limits import account_key, address_key, give_token, take_token

_hasher = argon2.PasswordHasher()  # argon2id with the library's current defaults
MAX_NAME = 200
MAX_EMAIL = 320  # RFC 3696's most
MAX_PASSWORD = 1024
MIN_PASSWORD = 8
# One message for an unknown email and a wrong password: which emails have
# an account is not told.
LOGIN_REFUSED = "wrong email or password"


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against when no account has the email, so that an
    unknown email costs what a wrong password does (one argon2 verify)."""
    return _hasher.hash(secrets.token_urlsafe(16))


async def _verify(password_hash: str, password: str) -> bool:
    """argon2 takes tens of ms of CPU: off the event loop (cffi releases the GIL)."""
    try:
        return await asyncio.to_thread(_hasher.verify, password_hash, password)
    except argon2.exceptions.VerificationError:
        return False


async def _hash(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


def _profile_text(value: str, field: str, most: int) -> str:
    check_text(value, field, most)
    return value


class Accounts(ServiceBase):
    async def signup(self, name: str, email: str, password: str, address: str | None = None) -> User:
        """A new account. An email that has one is a 409 (documented: without a
        mail round trip a signup cannot hide it); throttled like logins, per
        address and per email, so the answer cannot be harvested quickly."""
        await self._throttle_address(address)
        name, email = (name or "").strip(), (email or "").strip().lower()
        if not name:
            raise InvalidArgument("is required", field="name")
        _profile_text(name, "name", MAX_NAME)
        _check_email(email)
        _check_password(password)
        account = account_key(email)
        await take_token(self.db, self.auth_limits.account, account)
        password_hash = await _hash(password)
        try:
            row = await self.db.fetch_one(
                "create_user",
                {"id": uuid.uuid4(), "name": name, "email": email, "password_hash": password_hash},
            )
        except Conflict as exc:
            raise Conflict("an account with this email exists", field="email") from exc
        assert row is not None
        await give_token(self.db, self.auth_limits.account, account)
        return rows.user_from_row(row)

    async def login(self, email: str, password: str, address: str | None = None) -> tuple[str, datetime]:
        """A bearer token. Throttled per address (every attempt) and per
        account (failures); an unknown email and a wrong password fail alike,
        in the same time."""
        await self._throttle_address(address)
        email = (email or "").strip().lower()[: MAX_EMAIL + 1]
        account = account_key(email)
        await take_token(self.db, self.auth_limits.account, account)
        password = (password or "")[: MAX_PASSWORD + 1]
        # Text Postgres or argon2 cannot take (NUL, a lone surrogate) matches no account.
        usable = storable(email) and storable(password)
        row = await self.db.fetch_one("user_by_email", {"email": email}) if usable else None
        if row is None:
            await _verify(_dummy_hash(), password if usable else "")
            raise Unauthenticated(LOGIN_REFUSED)
        if not await _verify(row["password_hash"], password):
            raise Unauthenticated(LOGIN_REFUSED)
        await give_token(self.db, self.auth_limits.account, account)
        token = "cf_" + secrets.token_urlsafe(32)
        expires = datetime.now(UTC) + self.token_ttl
        await self.db.execute(
            "create_token",
            {"token_hash": token_hash(token), "user_id": row["id"], "expires_at": expires},
        )
        return token, expires

    async def _throttle_address(self, address: str | None) -> None:
        if address:
            await take_token(self.db, self.auth_limits.address, address_key(address))

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
        address: str | None = None,
    ) -> User:
        """Change the named profile fields (None: unchanged). ``notify`` is the
        default for the user's jobs that set none. A change of email is
        throttled as a signup is (it too tells whether an email is taken)."""
        if notify is not None:
            validate_notify(notify)
        if name is not None and not name.strip():
            raise InvalidArgument("must not be empty", field="name")
        if name is not None:
            _profile_text(name, "name", MAX_NAME)
        if email is not None:
            _check_email(email.strip().lower())
        if password is not None:
            _check_password(password)
        new_email = email.strip().lower() if email else None
        account = account_key(new_email) if new_email and new_email != user.email else None
        if account is not None:
            await self._throttle_address(address)
            await take_token(self.db, self.auth_limits.account, account)
        try:
            row = await self.db.fetch_one(
                "update_user",
                {
                    "id": user.id,
                    "name": name.strip() if name else None,
                    "email": new_email,
                    "password_hash": await _hash(password) if password else None,
                    "notify": rows.notify_param(notify) if notify is not None else None,
                },
            )
        except Conflict as exc:
            raise Conflict("an account with this email exists", field="email") from exc
        assert row is not None
        if account is not None:
            await give_token(self.db, self.auth_limits.account, account)
        return rows.user_from_row(row)


def _check_email(email: str) -> None:
    if "@" not in email or len(email) > MAX_EMAIL:
        raise InvalidArgument(f"must be an email address (at most {MAX_EMAIL} characters)", field="email")
    check_text(email, "email", MAX_EMAIL)


def _check_password(password: str) -> None:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidArgument(f"must be {MIN_PASSWORD}-{MAX_PASSWORD} characters", field="password")
    check_text(password, "password", MAX_PASSWORD)
