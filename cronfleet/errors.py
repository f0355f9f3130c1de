"""The project's error types. Every boundary (db, grpc, http) translates into
or out of these, so a handler never sees a psycopg or grpc exception."""

from __future__ import annotations

# How an error travels over gRPC beside its status: trailing metadata with its
# code and field (and, for a refusal for now, the seconds to wait). Here, not
# in cronfleet.rpc, so the SDK reads them without the server's modules.
ERROR_CODE_KEY = "cronfleet-error-code"
ERROR_FIELD_KEY = "cronfleet-error-field"
RETRY_AFTER_KEY = "retry-after"  # seconds, on RESOURCE_EXHAUSTED for a rate (HTTP's Retry-After)


class CronfleetError(Exception):
    """Base error. ``code`` is the stable machine-readable name."""

    code = "internal"
    http_status = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class InvalidArgument(CronfleetError):
    code = "invalid_argument"
    http_status = 400


class InvalidSpec(CronfleetError):
    """The request parsed but the job it describes cannot run."""

    code = "invalid_spec"
    http_status = 422


class Unauthenticated(CronfleetError):
    code = "unauthenticated"
    http_status = 401


class NotFound(CronfleetError):
    code = "not_found"
    http_status = 404


class LogRemoved(NotFound):
    """The run's log was stored and has been removed (the log-bytes-kept
    quota): HTTP 410, gRPC NOT_FOUND."""

    code = "log_removed"
    http_status = 410


class Conflict(CronfleetError):
    code = "conflict"
    http_status = 409


class Unavailable(CronfleetError):
    """A dependency (Postgres, etcd) is down; the caller may retry."""

    code = "unavailable"
    http_status = 503


class QuotaExceeded(CronfleetError):
    """A per-user quota of something kept (jobs, a planned fire rate) would be
    passed; ``field`` names the quota."""

    code = "quota_exceeded"
    http_status = 422


class RetryLater(CronfleetError):
    """Refused for now: the caller may try again after ``retry_after`` seconds
    (HTTP ``Retry-After``; gRPC trailing metadata ``retry-after``)."""

    http_status = 429

    def __init__(self, message: str, *, field: str | None = None, retry_after: int = 1) -> None:
        super().__init__(message, field=field)
        self.retry_after = max(1, retry_after)


class RateQuotaExceeded(RetryLater):
    """A per-user rate quota (runs per minute) is spent for now."""

    code = "quota_exceeded"


class Throttled(RetryLater):
    """Too many attempts (logins, signups) from one account or address."""

    code = "throttled"


class TooLong(CronfleetError):
    """A string (or list) past its bound, outside a job's spec (whose bounds
    are InvalidSpec): a profile field, a query parameter."""

    code = "too_long"
    http_status = 422
