"""What every SDK call shares: the server's refusal as :class:`ClientError`,
the call itself (:class:`Op`: which RPC, its request, how to read the reply)
and the metadata it carries (the bearer token, an idempotency key)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import grpc
from google.protobuf.message import Message

from cronfleet.errors import ERROR_CODE_KEY, ERROR_FIELD_KEY, RETRY_AFTER_KEY

DEFAULT_ADDR = "127.0.0.1:50051"
TIMEOUT = 30.0
PAGE = 500  # the most a list call returns at once
T = TypeVar("T")
Reply = dict[str, Any]


class ClientError(Exception):
    """The server refused: ``code`` is API.md's error code, ``field`` the input
    (or limit, or quota) it names, ``retry_after`` the seconds to wait when the
    refusal is for now (``throttled``, a rate ``quota_exceeded``)."""

    def __init__(self, code: str, message: str, field: str = "", retry_after: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.field = field
        self.retry_after = retry_after


def error(exc: grpc.aio.AioRpcError | grpc.RpcError) -> ClientError:
    call: Any = exc  # both kinds carry the call's status and trailers
    trailing = dict(call.trailing_metadata() or ())
    code = trailing.get(ERROR_CODE_KEY) or call.code().name.lower()
    retry_after = str(trailing.get(RETRY_AFTER_KEY, ""))
    return ClientError(
        str(code),
        call.details() or "",
        str(trailing.get(ERROR_FIELD_KEY, "")),
        int(retry_after) if retry_after.isdigit() else None,
    )


Metadata = tuple[tuple[str, str], ...]


def with_token(token: str | None, extra: Metadata) -> Metadata:
    return ((("authorization", f"Bearer {token}"),) if token else ()) + extra


@dataclass(frozen=True)
class Op(Generic[T]):
    """One call: which RPC, its request, and how to read the reply."""

    rpc: str
    request: Message
    read: Callable[[Any], T]
    metadata: tuple[tuple[str, str], ...] = ()


def idempotency(key: str | None) -> tuple[tuple[str, str], ...]:
    return (("idempotency-key", key),) if key else ()
