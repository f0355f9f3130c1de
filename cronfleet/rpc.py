"""gRPC plumbing every role shares: one server factory, one error interceptor.

:func:`serve` binds (``127.0.0.1:0`` in tests), registers the role's
services and ``grpc.health.v1``, starts, and says which port it got.
:class:`ErrorInterceptor` turns the project's errors into status codes (with
the stable code and field in trailing metadata, which the SDK reads back) and
binds a request id into the log context; servicers just raise.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from cronfleet.errors import (
    Conflict,
    CronfleetError,
    InvalidArgument,
    InvalidSpec,
    NotFound,
    QuotaExceeded,
    RetryLater,
    TooLong,
    Unauthenticated,
    Unavailable,
)

log = structlog.get_logger()
ERROR_CODE_KEY = "cronfleet-error-code"
ERROR_FIELD_KEY = "cronfleet-error-field"
REQUEST_ID_KEY = "x-request-id"

RETRY_AFTER_KEY = "retry-after"  # seconds, on RESOURCE_EXHAUSTED for a rate (HTTP's Retry-After)

STATUS_CODES: dict[type[CronfleetError], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    InvalidSpec: grpc.StatusCode.INVALID_ARGUMENT,
    TooLong: grpc.StatusCode.INVALID_ARGUMENT,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    NotFound: grpc.StatusCode.NOT_FOUND,
    Conflict: grpc.StatusCode.FAILED_PRECONDITION,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    QuotaExceeded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    RetryLater: grpc.StatusCode.RESOURCE_EXHAUSTED,
}

# A service name, and how to add its servicer to a server
# (e.g. ``lambda s: jobs_pb2_grpc.add_JobServiceServicer_to_server(servicer, s)``).
Service = tuple[str, Callable[[grpc.aio.Server], None]]


def status_code(exc: CronfleetError) -> grpc.StatusCode:
    for cls in type(exc).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return grpc.StatusCode.INTERNAL


class ErrorInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc ships no types
    """Maps CronfleetError to a status code and binds a request id, for unary
    RPCs and server streams (a reply streamed to one request).

    Bidirectional streams pass through untouched: they live as long as a
    worker does and handle their own errors, and wrapping them would cost on
    every message.
    """

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method.rsplit("/", 1)[-1]
        metadata = dict(handler_call_details.invocation_metadata or ())
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _guarded(handler.unary_unary, method, metadata),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _guarded_stream(handler.unary_stream, method, metadata),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler


def _bind_request(method: str, metadata: dict[str, Any]) -> None:
    request_id = str(metadata.get(REQUEST_ID_KEY) or uuid.uuid4().hex[:12])
    structlog.contextvars.bind_contextvars(request_id=request_id, rpc=method)


async def _abort(context: grpc.aio.ServicerContext, exc: CronfleetError) -> None:
    trailers: tuple[tuple[str, str], ...] = ((ERROR_CODE_KEY, exc.code), (ERROR_FIELD_KEY, exc.field or ""))
    if isinstance(exc, RetryLater):
        trailers += ((RETRY_AFTER_KEY, str(exc.retry_after)),)
    context.set_trailing_metadata(trailers)
    await context.abort(status_code(exc), str(exc))


def _guarded(inner: Any, method: str, metadata: dict[str, Any]) -> Any:
    async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
        _bind_request(method, metadata)
        try:
            return await inner(request, context)
        except CronfleetError as exc:
            await _abort(context, exc)
        finally:
            structlog.contextvars.clear_contextvars()

    return guarded


def _guarded_stream(inner: Any, method: str, metadata: dict[str, Any]) -> Any:
    async def guarded(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        _bind_request(method, metadata)
        try:
            async for reply in inner(request, context):
                yield reply
        except CronfleetError as exc:
            await _abort(context, exc)
        finally:
            structlog.contextvars.clear_contextvars()

    return guarded


@dataclass
class Server:
    """A started gRPC server and the address it bound."""

    grpc_server: grpc.aio.Server
    address: str
    health: health.aio.HealthServicer

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    async def stop(self, grace: float) -> None:
        """Say NOT_SERVING, let calls in flight finish for ``grace`` seconds, then stop."""
        await self.health.enter_graceful_shutdown()
        await self.grpc_server.stop(grace=grace)


async def serve(address: str, services: Sequence[Service], options: Sequence[tuple[str, Any]] = ()) -> Server:
    """Bind ``address`` (port 0: any free port), register ``services`` and
    health checking, start, and mark every service SERVING."""
    server = grpc.aio.server(interceptors=[ErrorInterceptor()], options=list(options))
    for _, register in services:
        register(server)
    checks = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checks, server)
    port = server.add_insecure_port(address)
    await server.start()
    for name in ["", *(name for name, _ in services)]:
        await checks.set(name, health_pb2.HealthCheckResponse.SERVING)
    host = address.rsplit(":", 1)[0]
    return Server(server, f"{host}:{port}", checks)
