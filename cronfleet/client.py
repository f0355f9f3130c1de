"""The Python SDK: ``cronfleet.Client`` (blocking) and ``AsyncClient`` over gRPC.

    from cronfleet import Client
    c = Client("127.0.0.1:50051")
    c.login("me@example.com", "secret-password")
    job = c.create_job(name="hello", command="echo hello")
    print(c.list_executions(job_id=job["id"]))

Jobs and executions come back as plain dicts shaped like API.md's JSON.
Errors raise :class:`ClientError` with the server's code, message and field.
"""

from __future__ import annotations

import codecs
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import grpc
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from cronfleet.codec import jsonapi, proto
from cronfleet.errors import ERROR_CODE_KEY, ERROR_FIELD_KEY, RETRY_AFTER_KEY, CronfleetError
from cronfleet.v1 import jobs_pb2 as pb
from cronfleet.v1 import jobs_pb2_grpc

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


def _error(exc: grpc.aio.AioRpcError | grpc.RpcError) -> ClientError:
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


def _dict(msg: Message) -> Reply:
    return dict(MessageToDict(msg, preserving_proto_field_name=True))


Metadata = tuple[tuple[str, str], ...]


def _with_token(token: str | None, extra: Metadata) -> Metadata:
    return ((("authorization", f"Bearer {token}"),) if token else ()) + extra


def _job(msg: pb.Job) -> Reply:
    """API.md's job, the same JSON the HTTP API sends."""
    return jsonapi.job_to_json(proto.job_from_proto(msg))


def _execution(msg: pb.Execution) -> Reply:
    """API.md's execution, the same JSON the HTTP API sends."""
    return jsonapi.execution_to_json(proto.execution_from_proto(msg))


def _dead_letter(msg: pb.DeadLetter) -> Reply:
    return {**_dict(msg), "created_at": jsonapi.iso(proto.to_datetime(msg.created_at))}


def _spec(fields: dict[str, Any]) -> pb.JobSpec:
    """Keyword arguments as a JobSpec message, typed (and named when wrong) by
    the same codec the HTTP API uses. Secret env values go as given (the
    server seals them); "***" for one keeps the value stored."""
    if "steps" in fields:  # (name, run) pairs are fine too
        fields = fields | {
            "steps": [
                s if isinstance(s, dict) else dict(zip(("name", "run"), s, strict=True))
                for s in fields["steps"]
            ]
        }
    try:
        return proto.spec_to_proto(jsonapi.spec_from_json(fields), reveal_secrets=True)
    except CronfleetError as exc:
        raise ClientError(exc.code, exc.message, exc.field or "") from None


@dataclass(frozen=True)
class _Op(Generic[T]):
    """One call: which RPC, its request, and how to read the reply."""

    rpc: str
    request: Message
    read: Callable[[Any], T]
    metadata: tuple[tuple[str, str], ...] = ()


def _signup(name: str, email: str, password: str) -> _Op[Reply]:
    return _Op("Signup", pb.SignupRequest(name=name, email=email, password=password), _dict)


def _login(email: str, password: str) -> _Op[str]:
    return _Op("Login", pb.LoginRequest(email=email, password=password), lambda r: str(r.token))


def _logout() -> _Op[None]:
    return _Op("Logout", pb.LogoutRequest(), lambda _r: None)


def _me() -> _Op[Reply]:
    return _Op("GetMe", pb.GetMeRequest(), _dict)


def _idempotency(key: str | None) -> tuple[tuple[str, str], ...]:
    return (("idempotency-key", key),) if key else ()


def _create_job(spec: dict[str, Any], idempotency_key: str | None) -> _Op[Reply]:
    return _Op("CreateJob", pb.CreateJobRequest(spec=_spec(spec)), _job, _idempotency(idempotency_key))


def _list_jobs(status: str, limit: int, page_token: str, q: str, recent: int) -> _Op[Reply]:
    return _Op(
        "ListJobs",
        pb.ListJobsRequest(status=status, limit=limit, page_token=page_token, q=q, recent=recent),
        lambda r: {"jobs": [_job(j) for j in r.jobs], "next_page_token": r.next_page_token},
    )


def _get_job(job_id: str) -> _Op[Reply]:
    return _Op("GetJob", pb.GetJobRequest(id=job_id), _job)


def _replace_job(job_id: str, spec: dict[str, Any]) -> _Op[Reply]:
    return _Op("ReplaceJob", pb.ReplaceJobRequest(id=job_id, spec=_spec(spec)), _job)


def _update_job(job_id: str, changes: dict[str, Any]) -> _Op[Reply]:
    """Only the named fields change; a None value resets one to its default."""
    present = {k: v for k, v in changes.items() if v is not None}
    request = pb.UpdateJobRequest(id=job_id, spec=_spec(present), update_mask=list(changes))
    return _Op("UpdateJob", request, _job)


def _job_command(rpc: str, request: Message) -> _Op[Reply]:
    return _Op(rpc, request, _job)


def _list_executions(job_id: str, status: str, worker_id: str, limit: int, page_token: str) -> _Op[Reply]:
    request = pb.ListExecutionsRequest(
        job_id=job_id, status=status, worker_id=worker_id, limit=limit, page_token=page_token
    )
    return _Op(
        "ListExecutions",
        request,
        lambda r: {"executions": [_execution(e) for e in r.executions], "next_page_token": r.next_page_token},
    )


def _list_dead_letters(job_id: str, limit: int, page_token: str) -> _Op[Reply]:
    request = pb.ListDeadLettersRequest(job_id=job_id, limit=limit, page_token=page_token)
    return _Op(
        "ListDeadLetters",
        request,
        lambda r: {
            "dead_letters": [_dead_letter(d) for d in r.dead_letters],
            "next_page_token": r.next_page_token,
        },
    )


def _list_alerts(job_id: str, limit: int, page_token: str) -> _Op[Reply]:
    def read(r: pb.ListAlertsResponse) -> Reply:
        alerts = [{**_dict(a), "event": json.loads(a.event_json)} for a in r.alerts]
        for a in alerts:
            a.pop("event_json", None)
        return {"alerts": alerts, "next_page_token": r.next_page_token}

    return _Op("ListAlerts", pb.ListAlertsRequest(job_id=job_id, limit=limit, page_token=page_token), read)


def _new_webhook_secret() -> _Op[str]:
    return _Op("NewWebhookSecret", pb.NewWebhookSecretRequest(), lambda r: str(r.secret))


def _stats(job_id: str) -> _Op[Reply]:
    return _Op("GetStats", pb.GetStatsRequest(job_id=job_id), _dict)


def _backfill(job_id: str, start: datetime | str, end: datetime | str) -> _Op[Reply]:
    try:
        request = pb.BackfillJobRequest(
            id=job_id,
            start=proto.timestamp(jsonapi.parse_time(start, "from")),
            end=proto.timestamp(jsonapi.parse_time(end, "to")),
        )
    except CronfleetError as exc:
        raise ClientError(exc.code, exc.message, exc.field or "") from None
    return _Op("BackfillJob", request, lambda r: {"executions": [_execution(e) for e in r.executions]})


def _preview(schedule: str, timezone: str, count: int) -> _Op[Reply]:
    request = pb.PreviewScheduleRequest(schedule=schedule, timezone=timezone, count=count)
    return _Op("PreviewSchedule", request, _preview_reply)


def _preview_reply(r: pb.SchedulePreview) -> Reply:
    return {
        "next": [jsonapi.iso(proto.to_datetime(t)) for t in r.next],
        "description": r.description,
        "warnings": list(r.warnings),
    }


def is_job_id(name_or_id: str) -> bool:
    """A job id (a UUID) rather than a name."""
    try:
        uuid.UUID(name_or_id)
    except ValueError:
        return False
    return True


def the_job_named(name: str, jobs: Iterable[Reply]) -> Reply:
    """The one job of ``jobs`` named exactly ``name``, or a ClientError
    (not_found, or invalid_argument listing the ids when several share it)."""
    found = [j for j in jobs if j["name"] == name]
    if not found:
        raise ClientError("not_found", f"no job named {name!r}", "job")
    if len(found) > 1:
        ids = ", ".join(j["id"] for j in found)
        raise ClientError(
            "invalid_argument", f"{len(found)} jobs are named {name!r} ({ids}); give an id", "job"
        )
    return found[0]


def _follow_request(execution_id: str) -> pb.GetExecutionLogsRequest:
    return pb.GetExecutionLogsRequest(id=str(execution_id))


def _logs(execution_id: str) -> _Op[str]:
    request = pb.GetExecutionLogsRequest(id=str(execution_id))
    return _Op("GetExecutionLogs", request, lambda r: r.data.decode(errors="replace"))


class Client:
    """Blocking client: each method is one call and returns API.md's JSON as dicts."""

    def __init__(self, address: str = DEFAULT_ADDR, token: str | None = None) -> None:
        self._channel = grpc.insecure_channel(address)
        self._stub = jobs_pb2_grpc.JobServiceStub(self._channel)
        self.token = token

    def _metadata(self, extra: Metadata = ()) -> Metadata:
        return _with_token(self.token, extra)

    def _run(self, op: _Op[T]) -> T:
        try:
            reply = getattr(self._stub, op.rpc)(
                op.request, metadata=self._metadata(op.metadata), timeout=TIMEOUT
            )
        except grpc.RpcError as exc:
            raise _error(exc) from None
        return op.read(reply)

    def signup(self, name: str, email: str, password: str) -> Reply:
        return self._run(_signup(name, email, password))

    def login(self, email: str, password: str) -> str:
        """Log in; the token is kept for the calls that follow, and returned."""
        self.token = self._run(_login(email, password))
        return self.token

    def logout(self) -> None:
        self._run(_logout())
        self.token = None

    def me(self) -> Reply:
        return self._run(_me())

    def create_job(self, *, idempotency_key: str | None = None, **spec: Any) -> Reply:
        """Create a job; with ``idempotency_key``, a retry of the same call creates nothing new."""
        return self._run(_create_job(spec, idempotency_key))

    def list_jobs(
        self, status: str = "", limit: int = 0, page_token: str = "", *, q: str = "", recent: int = 0
    ) -> Reply:
        return self._run(_list_jobs(status, limit, page_token, q, recent))

    def get_job(self, job_id: str) -> Reply:
        return self._run(_get_job(job_id))

    def all_jobs(self, status: str = "", *, q: str = "", recent: int = 0) -> list[Reply]:
        """Every job of the caller (deleted ones only with ``status="deleted"``), all pages."""
        jobs: list[Reply] = []
        token = ""
        while True:
            page = self.list_jobs(status, PAGE, token, q=q, recent=recent)
            jobs.extend(page["jobs"])
            token = page["next_page_token"]
            if not token:
                return jobs

    def find_job(self, name_or_id: str) -> Reply:
        """A job by id, or by its exact name among the caller's jobs that are
        not deleted; ClientError when none or several have that name."""
        if is_job_id(name_or_id):
            return self.get_job(name_or_id)
        return the_job_named(name_or_id, self.all_jobs(q=name_or_id))

    def replace_job(self, job_id: str, **spec: Any) -> Reply:
        return self._run(_replace_job(job_id, spec))

    def update_job(self, job_id: str, **changes: Any) -> Reply:
        return self._run(_update_job(job_id, changes))

    def delete_job(self, job_id: str, *, cancel_running: bool = False) -> None:
        request = pb.DeleteJobRequest(id=job_id, cancel_running=cancel_running)
        self._run(_Op("DeleteJob", request, lambda _r: None))

    def run_job(self, job_id: str, *, idempotency_key: str | None = None) -> Reply:
        return self._run(
            _Op("RunJob", pb.RunJobRequest(id=job_id), _execution, _idempotency(idempotency_key))
        )

    def pause_job(self, job_id: str) -> Reply:
        return self._run(_job_command("PauseJob", pb.PauseJobRequest(id=job_id)))

    def resume_job(self, job_id: str) -> Reply:
        return self._run(_job_command("ResumeJob", pb.ResumeJobRequest(id=job_id)))

    def list_executions(
        self, job_id: str = "", status: str = "", worker_id: str = "", limit: int = 0, page_token: str = ""
    ) -> Reply:
        return self._run(_list_executions(job_id, status, worker_id, limit, page_token))

    def get_execution(self, execution_id: str) -> Reply:
        return self._run(_Op("GetExecution", pb.GetExecutionRequest(id=str(execution_id)), _execution))

    def logs(self, execution_id: str) -> str:
        return self._run(_logs(execution_id))

    def follow_logs(self, execution_id: str) -> Iterator[str]:
        """The run's output as it is written, from the start, until the run is over."""
        call = self._stub.FollowExecutionLogs(_follow_request(execution_id), metadata=self._metadata())
        text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        try:
            for chunk in call:
                if part := text.decode(chunk.data):
                    yield part
        except grpc.RpcError as exc:
            raise _error(exc) from None
        finally:
            call.cancel()  # a reader that stops early ends the stream
        if tail := text.decode(b"", final=True):
            yield tail

    def cancel_execution(self, execution_id: str) -> Reply:
        return self._run(_Op("CancelExecution", pb.CancelExecutionRequest(id=str(execution_id)), _execution))

    def list_dead_letters(self, job_id: str = "", limit: int = 0, page_token: str = "") -> Reply:
        return self._run(_list_dead_letters(job_id, limit, page_token))

    def replay_dead_letter(self, dead_letter_id: str) -> Reply:
        return self._run(
            _Op("ReplayDeadLetter", pb.ReplayDeadLetterRequest(id=str(dead_letter_id)), _execution)
        )

    def delete_dead_letter(self, dead_letter_id: str) -> None:
        request = pb.DeleteDeadLetterRequest(id=str(dead_letter_id))
        self._run(_Op("DeleteDeadLetter", request, lambda _r: None))

    def backfill_job(self, job_id: str, start: datetime | str, end: datetime | str) -> Reply:
        """One run per fire of the job's schedule in [start, end] that has none."""
        return self._run(_backfill(job_id, start, end))

    def list_alerts(self, job_id: str = "", limit: int = 0, page_token: str = "") -> Reply:
        return self._run(_list_alerts(job_id, limit, page_token))

    def new_webhook_secret(self) -> str:
        """A new secret for the signatures of this user's alerts (shown only now)."""
        return self._run(_new_webhook_secret())

    def stats(self, job_id: str = "") -> Reply:
        """The caller's totals, or one job's stats."""
        return self._run(_stats(job_id))

    def preview_schedule(self, schedule: str, timezone: str = "UTC", count: int = 5) -> Reply:
        return self._run(_preview(schedule, timezone, count))

    def cluster(self) -> Reply:
        return self._run(_Op("GetCluster", pb.GetClusterRequest(), proto.cluster_to_json))

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient:
    """Asyncio client (grpc.aio): the same methods as :class:`Client`, awaited."""

    def __init__(self, address: str = DEFAULT_ADDR, token: str | None = None) -> None:
        self._channel = grpc.aio.insecure_channel(address)
        self._stub = jobs_pb2_grpc.JobServiceStub(self._channel)
        self.token = token

    def _metadata(self, extra: Metadata = ()) -> Metadata:
        return _with_token(self.token, extra)

    async def _run(self, op: _Op[T]) -> T:
        try:
            reply = await getattr(self._stub, op.rpc)(
                op.request, metadata=self._metadata(op.metadata), timeout=TIMEOUT
            )
        except grpc.aio.AioRpcError as exc:
            raise _error(exc) from None
        return op.read(reply)

    async def signup(self, name: str, email: str, password: str) -> Reply:
        return await self._run(_signup(name, email, password))

    async def login(self, email: str, password: str) -> str:
        """Log in; the token is kept for the calls that follow, and returned."""
        self.token = await self._run(_login(email, password))
        return self.token

    async def logout(self) -> None:
        await self._run(_logout())
        self.token = None

    async def me(self) -> Reply:
        return await self._run(_me())

    async def create_job(self, *, idempotency_key: str | None = None, **spec: Any) -> Reply:
        """Create a job; with ``idempotency_key``, a retry of the same call creates nothing new."""
        return await self._run(_create_job(spec, idempotency_key))

    async def list_jobs(
        self, status: str = "", limit: int = 0, page_token: str = "", *, q: str = "", recent: int = 0
    ) -> Reply:
        return await self._run(_list_jobs(status, limit, page_token, q, recent))

    async def get_job(self, job_id: str) -> Reply:
        return await self._run(_get_job(job_id))

    async def all_jobs(self, status: str = "", *, q: str = "", recent: int = 0) -> list[Reply]:
        """Every job of the caller (deleted ones only with ``status="deleted"``), all pages."""
        jobs: list[Reply] = []
        token = ""
        while True:
            page = await self.list_jobs(status, PAGE, token, q=q, recent=recent)
            jobs.extend(page["jobs"])
            token = page["next_page_token"]
            if not token:
                return jobs

    async def find_job(self, name_or_id: str) -> Reply:
        """A job by id, or by its exact name among the caller's jobs that are
        not deleted; ClientError when none or several have that name."""
        if is_job_id(name_or_id):
            return await self.get_job(name_or_id)
        return the_job_named(name_or_id, await self.all_jobs(q=name_or_id))

    async def replace_job(self, job_id: str, **spec: Any) -> Reply:
        return await self._run(_replace_job(job_id, spec))

    async def update_job(self, job_id: str, **changes: Any) -> Reply:
        return await self._run(_update_job(job_id, changes))

    async def delete_job(self, job_id: str, *, cancel_running: bool = False) -> None:
        request = pb.DeleteJobRequest(id=job_id, cancel_running=cancel_running)
        await self._run(_Op("DeleteJob", request, lambda _r: None))

    async def run_job(self, job_id: str, *, idempotency_key: str | None = None) -> Reply:
        return await self._run(
            _Op("RunJob", pb.RunJobRequest(id=job_id), _execution, _idempotency(idempotency_key))
        )

    async def pause_job(self, job_id: str) -> Reply:
        return await self._run(_job_command("PauseJob", pb.PauseJobRequest(id=job_id)))

    async def resume_job(self, job_id: str) -> Reply:
        return await self._run(_job_command("ResumeJob", pb.ResumeJobRequest(id=job_id)))

    async def list_executions(
        self, job_id: str = "", status: str = "", worker_id: str = "", limit: int = 0, page_token: str = ""
    ) -> Reply:
        return await self._run(_list_executions(job_id, status, worker_id, limit, page_token))

    async def get_execution(self, execution_id: str) -> Reply:
        return await self._run(_Op("GetExecution", pb.GetExecutionRequest(id=str(execution_id)), _execution))

    async def logs(self, execution_id: str) -> str:
        return await self._run(_logs(execution_id))

    async def follow_logs(self, execution_id: str) -> AsyncIterator[str]:
        """The run's output as it is written, from the start, until the run is over."""
        call = self._stub.FollowExecutionLogs(_follow_request(execution_id), metadata=self._metadata())
        text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        try:
            async for chunk in call:
                if part := text.decode(chunk.data):
                    yield part
        except grpc.aio.AioRpcError as exc:
            raise _error(exc) from None
        finally:
            call.cancel()
        if tail := text.decode(b"", final=True):
            yield tail

    async def cancel_execution(self, execution_id: str) -> Reply:
        request = pb.CancelExecutionRequest(id=str(execution_id))
        return await self._run(_Op("CancelExecution", request, _execution))

    async def list_dead_letters(self, job_id: str = "", limit: int = 0, page_token: str = "") -> Reply:
        return await self._run(_list_dead_letters(job_id, limit, page_token))

    async def replay_dead_letter(self, dead_letter_id: str) -> Reply:
        request = pb.ReplayDeadLetterRequest(id=str(dead_letter_id))
        return await self._run(_Op("ReplayDeadLetter", request, _execution))

    async def delete_dead_letter(self, dead_letter_id: str) -> None:
        request = pb.DeleteDeadLetterRequest(id=str(dead_letter_id))
        await self._run(_Op("DeleteDeadLetter", request, lambda _r: None))

    async def backfill_job(self, job_id: str, start: datetime | str, end: datetime | str) -> Reply:
        """One run per fire of the job's schedule in [start, end] that has none."""
        return await self._run(_backfill(job_id, start, end))

    async def list_alerts(self, job_id: str = "", limit: int = 0, page_token: str = "") -> Reply:
        return await self._run(_list_alerts(job_id, limit, page_token))

    async def new_webhook_secret(self) -> str:
        return await self._run(_new_webhook_secret())

    async def stats(self, job_id: str = "") -> Reply:
        return await self._run(_stats(job_id))

    async def preview_schedule(self, schedule: str, timezone: str = "UTC", count: int = 5) -> Reply:
        return await self._run(_preview(schedule, timezone, count))

    async def cluster(self) -> Reply:
        return await self._run(_Op("GetCluster", pb.GetClusterRequest(), proto.cluster_to_json))

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
