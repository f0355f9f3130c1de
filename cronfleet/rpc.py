"""gRPC plumbing every role shares: one server factory, one error
interceptor, and how internal calls are carried.

:func:`serve` binds (``127.0.0.1:0`` in tests), registers the role's
services and ``grpc.health.v1``, starts, and says which port it got.
:class:`ErrorInterceptor` turns the project's errors into status codes (with
the stable code and field in trailing metadata, which the SDK reads back) and
binds a request id into the log context; servicers just raise.

Internal gRPC (worker -> scheduler, gateway -> coordinator) is mutual TLS
(:class:`InternalTls`): a server takes only clients presenting a certificate
its CA signed, and :func:`admit_peer` lets a service take only some roles.
Plaintext is possible only by the setting ``internal_tls = false``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from cronfleet import tls as certificates
from cronfleet.config import Settings
from cronfleet.errors import (
    ERROR_CODE_KEY,
    ERROR_FIELD_KEY,
    RETRY_AFTER_KEY,
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
REQUEST_ID_KEY = "x-request-id"

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


async def serve(
    address: str,
    services: Sequence[Service],
    *,
    tls: InternalTls | None,
    options: Sequence[tuple[str, Any]] = (),
) -> Server:
    """Bind ``address`` (port 0: any free port), register ``services`` and
    health checking, start, and mark every service SERVING. With ``tls``,
    only clients presenting a certificate of its CA get past the handshake;
    None serves plaintext (said by the caller, never by default)."""
    server = grpc.aio.server(interceptors=[ErrorInterceptor()], options=list(options))
    for _, register in services:
        register(server)
    checks = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checks, server)
    port = (
        server.add_secure_port(address, tls.server_credentials())
        if tls is not None
        else server.add_insecure_port(address)
    )
    await server.start()
    for name in ["", *(name for name, _ in services)]:
        await checks.set(name, health_pb2.HealthCheckResponse.SERVING)
    host = address.rsplit(":", 1)[0]
    return Server(server, f"{host}:{port}", checks)


# ------------------------------------------------------------ internal TLS
class TlsNotConfigured(ValueError):
    """Internal TLS is on but this process was not given its files."""


@dataclass(frozen=True, repr=False)
class InternalTls:
    """This process's side of internal mutual TLS (PEM): the CA it trusts,
    and the certificate and key it presents, as server and as client."""

    ca: bytes
    cert: bytes
    key: bytes

    @classmethod
    def load(cls, ca: str | Path, cert: str | Path, key: str | Path) -> InternalTls:
        return cls(Path(ca).read_bytes(), Path(cert).read_bytes(), Path(key).read_bytes())

    @classmethod
    def from_settings(cls, settings: Settings) -> InternalTls | None:
        """The files the settings name, or None when ``internal_tls`` is off.
        Raises TlsNotConfigured, naming what is missing, when it is on."""
        if not settings.internal_tls:
            return None
        missing = [
            f"CRONFLEET_{name.upper()}"
            for name in ("tls_ca", "tls_cert", "tls_key")
            if not getattr(settings, name)
        ]
        if missing:
            raise TlsNotConfigured(
                f"internal gRPC is mutual TLS, and {', '.join(missing)} not set: give this process the "
                "CA, its certificate and key (`cronfleet up` makes them; `cronfleet certs` for other "
                "deployments), or set CRONFLEET_INTERNAL_TLS=off for plaintext"
            )
        return cls.load(settings.tls_ca, settings.tls_cert, settings.tls_key)

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.key, self.cert)], root_certificates=self.ca, require_client_auth=True
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca, private_key=self.key, certificate_chain=self.cert
        )


def internal_channel(
    address: str, tls: InternalTls | None, options: Sequence[tuple[str, Any]] = ()
) -> grpc.aio.Channel:
    """A channel to another member: mutual TLS (the server's certificate
    must name the host dialled), or plaintext when ``tls`` is None."""
    if tls is None:
        return grpc.aio.insecure_channel(address, options=list(options))
    return grpc.aio.secure_channel(address, tls.channel_credentials(), options=list(options))


def peer_role(context: grpc.aio.ServicerContext) -> str | None:
    """The role the caller's certificate names; None over plaintext."""
    names = context.auth_context().get("x509_common_name") or []
    return certificates.role_of(names[0].decode()) if names else None


async def admit_peer(context: grpc.aio.ServicerContext, *roles: str) -> None:
    """End the call (PERMISSION_DENIED) unless the caller's certificate names
    one of ``roles``; a plaintext server (internal TLS off, by setting)
    takes anyone."""
    if context.auth_context().get("transport_security_type") != [b"ssl"]:
        return
    role = peer_role(context)
    if role in roles:
        return
    await context.abort(
        grpc.StatusCode.PERMISSION_DENIED,
        f"only {' or '.join(roles)} certificates are taken here (this one names {role or 'no role'})",
    )
