"""Accounts: sign up, log in and out, the caller's own profile."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from cronfleet.codec import jsonapi
from gateway.http.common import Caller, Service, bearer, read_object

router = APIRouter(prefix="/api/v1", tags=["auth"])
PROFILE_FIELDS = ("name", "email", "password")


@router.post("/auth/signup", status_code=201)
async def signup(request: Request, service: Service) -> dict[str, Any]:
    body = await read_object(request, PROFILE_FIELDS)
    user = await service.signup(
        str(body.get("name") or ""), str(body.get("email") or ""), str(body.get("password") or "")
    )
    return {k: v for k, v in jsonapi.user_to_json(user).items() if k != "created_at"}


@router.post("/auth/login")
async def login(request: Request, service: Service) -> dict[str, Any]:
    body = await read_object(request, ("email", "password"), strict=False)
    token, expires = await service.login(str(body.get("email") or ""), str(body.get("password") or ""))
    return {"token": token, "expires_at": jsonapi.iso(expires)}


@router.post("/auth/logout", status_code=204)
async def logout(request: Request, service: Service, user: Caller) -> Response:
    await service.logout(bearer(request) or "")
    return Response(status_code=204)


@router.get("/me")
async def me(user: Caller) -> dict[str, Any]:
    return jsonapi.user_to_json(user)


@router.patch("/me")
async def update_me(request: Request, service: Service, user: Caller) -> dict[str, Any]:
    body = await read_object(request, (*PROFILE_FIELDS, "notify"))
    notify = jsonapi.notify_from_json(body["notify"]) if body.get("notify") is not None else None
    updated = await service.update_me(user, body.get("name"), body.get("email"), body.get("password"), notify)
    return jsonapi.user_to_json(updated)


@router.post("/me/webhook-secret")
async def new_webhook_secret(service: Service, user: Caller) -> dict[str, Any]:
    """A new secret for the signatures of the caller's alerts; shown only now."""
    return {"secret": await service.new_webhook_secret(user), "header": "X-Cronfleet-Signature"}
