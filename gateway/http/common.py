"""What every route shares: reading a body, the caller, the error reply."""

from __future__ import annotations

import json
from typing import Annotated, Any

import yaml
from fastapi import Depends, Request
from fastapi.responses import JSONResponse

from cronfleet.errors import CronfleetError, InvalidArgument
from cronfleet.records import User
from gateway.service import JobsService

MAX_BODY = 1 << 20
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")


class BodyTooLarge(CronfleetError):
    code = "too_large"
    http_status = 413


def error_response(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    """API.md's error body; ``field`` names the input that is wrong, when one is."""
    error = {"code": code, "message": message} | ({"field": field} if field else {})
    return JSONResponse({"error": error}, status_code=status)


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
    """The JSON (or, with a YAML content type, YAML) body, parsed."""
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise BodyTooLarge(f"request body over {MAX_BODY} bytes")
    if not raw:
        raise InvalidArgument("request body is empty; send a JSON object")
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip()
    try:
        if ctype in YAML_TYPES:
            return yaml.safe_load(raw)
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as exc:
        raise InvalidArgument(f"malformed {'YAML' if 'yaml' in ctype else 'JSON'}: {exc}") from exc


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
