"""Accounts: sign up, log in and out, the caller's own profile."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from cronfleet.codec import jsonapi
from cronfleet.errors import InvalidArgument
from gateway.http import schemas as S
from gateway.http.common import Caller, Service, bearer, client_address, read_object
from gateway.http.openapi import doc

router = APIRouter(prefix="/api/v1", tags=["auth"])
PROFILE_FIELDS = ("name", "email", "password")


@router.post(
    "/auth/signup",
    status_code=201,
    **doc(201, S.NewUser, body=S.SignupBody, auth=False, errors=(400, 409, 422, 429)),
)
async def signup(request: Request, service: Service) -> dict[str, Any]:
    body = await read_object(request, PROFILE_FIELDS)
    name, email, password = (_text(body, key) for key in PROFILE_FIELDS)
    user = await service.signup(name, email, password, client_address(request))
    return {k: v for k, v in jsonapi.user_to_json(user).items() if k != "created_at"}


@router.post("/auth/login", **doc(200, S.LoginReply, body=S.LoginBody, auth=False, errors=(400, 401, 429)))
async def login(request: Request, service: Service) -> dict[str, Any]:
    body = await read_object(request, ("email", "password"), strict=False)
    token, expires = await service.login(
        _text(body, "email"), _text(body, "password"), client_address(request)
    )
    return {"token": token, "expires_at": jsonapi.iso(expires)}


@router.post("/auth/logout", status_code=204, **doc(204, errors=()))
async def logout(request: Request, service: Service, user: Caller) -> Response:
    await service.logout(bearer(request) or "")
    return Response(status_code=204)


@router.get("/me", **doc(200, S.UserReply, errors=()))
async def me(user: Caller) -> dict[str, Any]:
    return jsonapi.user_to_json(user)


@router.patch("/me", **doc(200, S.UserReply, body=S.ProfileBody, errors=(400, 409, 422)))
async def update_me(request: Request, service: Service, user: Caller) -> dict[str, Any]:
    body = await read_object(request, (*PROFILE_FIELDS, "notify"))
    notify = jsonapi.notify_from_json(body["notify"]) if body.get("notify") is not None else None
    name, email, password = (
        _text(body, key) if body.get(key) is not None else None for key in PROFILE_FIELDS
    )
    updated = await service.update_me(user, name, email, password, notify, client_address(request))
    return jsonapi.user_to_json(updated)


@router.post("/me/webhook-secret", **doc(200, S.WebhookSecretReply, errors=()))
async def new_webhook_secret(service: Service, user: Caller) -> dict[str, Any]:
    """A new secret for the signatures of the caller's alerts; shown only now."""
    return {"secret": await service.new_webhook_secret(user), "header": "X-Cronfleet-Signature"}


def _text(body: dict[str, Any], key: str) -> str:
    """A profile field: a string ("" when absent)."""
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidArgument("must be a string", field=key)
    return value
