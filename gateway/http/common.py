"""What every route shares: reading a body, the caller, the error reply."""

from __future__ import annotations

import json
from typing import Annotated, Any

import yaml
from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cronfleet.errors import CronfleetError, InvalidArgument
from cronfleet.records import User
from gateway.service import JobsService

MAX_BODY = 1 << 20
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")


class BodyTooLarge(CronfleetError):
    code = "too_large"
    http_status = 413


def error_response(
    status: int, code: str, message: str, field: str | None = None, retry_after: int | None = None
) -> JSONResponse:
    """API.md's error body; ``field`` names the input that is wrong (or the
    limit or quota passed), when one is; a 429 says when to try again."""
    error: dict[str, Any] = {"code": code, "message": message} | ({"field": field} if field else {})
    if retry_after is None:
        return JSONResponse({"error": error}, status_code=status)
    error["retry_after_seconds"] = retry_after
    return JSONResponse({"error": error}, status_code=status, headers={"Retry-After": str(retry_after)})


def client_address(request: Request) -> str | None:
    """The caller's address (a trusted proxy's X-Forwarded-For already applied
    by the server; ``CRONFLEET_FORWARDED_ALLOW_IPS``)."""
    return request.client.host if request.client else None


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


def get_service(request: Request) -> JobsService:
    service: JobsService = request.app.state.service
    return service


async def current_user(request: Request) -> User:
    """The caller, from the bearer token; 401 without a valid one."""
    return await get_service(request).authenticate(bearer(request))


Service = Annotated[JobsService, Depends(get_service)]
Caller = Annotated[User, Depends(current_user)]


async def read_body(request: Request) -> Any:
    """The JSON (or, with a YAML content type, YAML) body, parsed. Its size is
    bounded by :class:`BodyLimit`, for every route."""
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise BodyTooLarge(f"request body over {MAX_BODY} bytes")
    if not raw:
        raise InvalidArgument("request body is empty; send a JSON object")
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    try:
        if ctype in YAML_TYPES:
            return yaml.safe_load(raw)
        return json.loads(raw, parse_constant=_no_constant)
    except (ValueError, yaml.YAMLError, RecursionError) as exc:
        what = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:300]
        raise InvalidArgument(f"malformed {'YAML' if 'yaml' in ctype else 'JSON'}: {what}") from exc


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


class BodyLimit:
    """ASGI middleware: every request body at most ``most`` bytes, whatever the
    route, read or not. A declared Content-Length over it is refused before a
    byte is read; a chunked body (or one whose length was not declared) is
    counted as it arrives and refused once it passes the bound. (A body longer
    than its declared length cannot reach here: the server reads exactly the
    declared length and takes the rest as the next request.)"""

    def __init__(self, app: ASGIApp, most: int = MAX_BODY) -> None:
        self.app = app
        self.most = most

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.most):
            reply = error_response(413, BodyTooLarge.code, f"request body over {self.most} bytes")
            if not declared.isdigit():
                reply = error_response(400, "invalid_argument", "Content-Length is not a number")
            reply.headers["Connection"] = "close"
            await reply(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.most:
                    raise BodyTooLarge(f"request body over {self.most} bytes")
            return message

        await self.app(scope, counted, send)


async def read_object(request: Request, fields: tuple[str, ...], *, strict: bool = True) -> dict[str, Any]:
    """A body that must be an object of (some of) ``fields``; others are an
    error when ``strict``."""
    body = await read_body(request)
    if not isinstance(body, dict):
        raise InvalidArgument(f"body must be an object {{{', '.join(fields)}}}")
    unknown = set(body) - set(fields)
    if unknown and strict:
        raise InvalidArgument("unknown field", field=sorted(unknown)[0])
    return body
