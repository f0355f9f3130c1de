"""Accounts: signup, login, the profile (and its default notify targets),
the webhook secret."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from cronfleet import models
from gateway.http.schemas.common import NotifyEvent, Strict, time_field, url_field
from gateway.service import accounts

_DEFAULT_EVENTS: tuple[NotifyEvent, ...] = ("failed", "dead", "timed_out", "recovered")


class NotifyTarget(Strict):
    webhook: str = url_field()
    on: list[NotifyEvent] = Field(default_factory=lambda: list(_DEFAULT_EVENTS), min_length=1, max_length=50)
    format: Literal["json", "slack"] = "json"


class SignupBody(Strict):
    name: str = Field(min_length=1, max_length=accounts.MAX_NAME, pattern=r"\S")
    email: str = Field(max_length=accounts.MAX_EMAIL, pattern=r"^[^@\s]+@[^@\s]+$")
    password: str = Field(min_length=accounts.MIN_PASSWORD, max_length=accounts.MAX_PASSWORD)


class LoginBody(BaseModel):
    email: str = Field(max_length=accounts.MAX_EMAIL)
    password: str = Field(max_length=accounts.MAX_PASSWORD)


class ProfileBody(Strict):
    name: str | None = Field(None, min_length=1, max_length=accounts.MAX_NAME, pattern=r"\S")
    email: str | None = Field(None, max_length=accounts.MAX_EMAIL, pattern=r"^[^@\s]+@[^@\s]+$")
    password: str | None = Field(None, min_length=accounts.MIN_PASSWORD, max_length=accounts.MAX_PASSWORD)
    notify: list[NotifyTarget] | None = Field(None, max_length=models.MAX_NOTIFY_TARGETS)


class NewUser(BaseModel):
    id: str
    name: str
    email: str
    notify: list[NotifyTarget] = []


class UserReply(NewUser):
    created_at: str = time_field(required=True)


class LoginReply(BaseModel):
    token: str
    expires_at: str = time_field(required=True)


class WebhookSecretReply(BaseModel):
    secret: str
    header: str
