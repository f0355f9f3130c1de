"""The Python SDK: ``cronfleet.Client`` (blocking) and ``AsyncClient`` over gRPC.

    from cronfleet import Client
    c = Client("127.0.0.1:50051")
    c.login("me@example.com", "secret-password")
    job = c.create_job(name="hello", command="echo hello")
    print(c.list_executions(job_id=job["id"]))

Jobs and executions come back as plain dicts shaped like API.md's JSON.
Errors raise :class:`ClientError` with the server's code and message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from cronfleet.v1 import jobs_pb2 as pb
from cronfleet.v1 import jobs_pb2_grpc

DEFAULT_ADDR = "127.0.0.1:50051"
TIMEOUT = 30.0


class ClientError(Exception):
    def __init__(self, code: str, message: str, field: str = "") -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.field = field


def _error(exc: grpc.RpcError) -> ClientError:
    trailing = dict(exc.trailing_metadata() or ())  # type: ignore[attr-defined]
    code = trailing.get("cronfleet-error-code") or exc.code().name.lower()  # type: ignore[attr-defined]
    return ClientError(str(code), exc.details() or "", str(trailing.get("cronfleet-error-field", "")))  # type: ignore[attr-defined]


def _dict(msg: Message) -> dict[str, Any]:
    return MessageToDict(msg, preserving_proto_field_name=True)


def _job(msg: pb.Job) -> dict[str, Any]:
    d = _dict(msg)
    return {**d.pop("spec", {}), **d}


def _spec(fields: dict[str, Any]) -> pb.JobSpec:
    fields = dict(fields)
    for name in ("run_at", "start_at", "end_at"):
        value = fields.get(name)
        if isinstance(value, datetime):
            fields[name] = value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if "steps" in fields:
        fields["steps"] = [s if isinstance(s, dict) else {"name": s[0], "run": s[1]} for s in fields["steps"]]
    from google.protobuf.json_format import ParseDict

    return ParseDict(fields, pb.JobSpec())


@dataclass(frozen=True)
class _Op:
    rpc: str
    request: Message
    convert: Callable[[Any], Any]


class _Ops:
    """Each public call, as (rpc, request, how to read the reply)."""

    def signup(self, name: str, email: str, password: str) -> _Op:
        return _Op("Signup", pb.SignupRequest(name=name, email=email, password=password), _dict)

    def me(self) -> _Op:
        return _Op("GetMe", pb.GetMeRequest(), _dict)

    def create_job(self, **spec: Any) -> _Op:
        return _Op("CreateJob", pb.CreateJobRequest(spec=_spec(spec)), _job)

    def list_jobs(self, status: str = "", limit: int = 0, page_token: str = "") -> _Op:
        return _Op(
            "ListJobs",
            pb.ListJobsRequest(status=status, limit=limit, page_token=page_token),
            lambda r: {"jobs": [_job(j) for j in r.jobs], "next_page_token": r.next_page_token},
        )

    def get_job(self, job_id: str) -> _Op:
        return _Op("GetJob", pb.GetJobRequest(id=job_id), _job)

    def replace_job(self, job_id: str, **spec: Any) -> _Op:
        return _Op("ReplaceJob", pb.ReplaceJobRequest(id=job_id, spec=_spec(spec)), _job)

    def update_job(self, job_id: str, **changes: Any) -> _Op:
        present = {k: v for k, v in changes.items() if v is not None}
        req = pb.UpdateJobRequest(id=job_id, spec=_spec(present), update_mask=list(changes))
        return _Op("UpdateJob", req, _job)

    def delete_job(self, job_id: str) -> _Op:
        return _Op("DeleteJob", pb.DeleteJobRequest(id=job_id), lambda _r: None)

    def run_job(self, job_id: str) -> _Op:
        return _Op("RunJob", pb.RunJobRequest(id=job_id), _dict)

    def pause_job(self, job_id: str) -> _Op:
        return _Op("PauseJob", pb.PauseJobRequest(id=job_id), _job)

    def resume_job(self, job_id: str) -> _Op:
        return _Op("ResumeJob", pb.ResumeJobRequest(id=job_id), _job)

    def list_executions(
        self, job_id: str = "", status: str = "", worker_id: str = "", limit: int = 0, page_token: str = ""
    ) -> _Op:
        req = pb.ListExecutionsRequest(
            job_id=job_id, status=status, worker_id=worker_id, limit=limit, page_token=page_token
        )
        return _Op(
            "ListExecutions",
            req,
            lambda r: {"executions": [_dict(e) for e in r.executions], "next_page_token": r.next_page_token},
        )

    def get_execution(self, execution_id: str) -> _Op:
        return _Op("GetExecution", pb.GetExecutionRequest(id=str(execution_id)), _dict)

    def logs(self, execution_id: str) -> _Op:
        return _Op(
            "GetExecutionLogs",
            pb.GetExecutionLogsRequest(id=str(execution_id)),
            lambda r: r.data.decode(errors="replace"),
        )

    def cancel_execution(self, execution_id: str) -> _Op:
        return _Op("CancelExecution", pb.CancelExecutionRequest(id=str(execution_id)), _dict)

    def cluster(self) -> _Op:
        return _Op("GetCluster", pb.GetClusterRequest(), _dict)


class Client(_Ops):
    """Blocking client. Every method of ``_Ops`` is a call returning dicts."""

    def __init__(self, address: str = DEFAULT_ADDR, token: str | None = None) -> None:
        self._channel = grpc.insecure_channel(address)
        self._stub = jobs_pb2_grpc.JobServiceStub(self._channel)
        self.token = token

    def _run(self, op: _Op) -> Any:
        meta = (("authorization", f"Bearer {self.token}"),) if self.token else ()
        try:
            reply = getattr(self._stub, op.rpc)(op.request, metadata=meta, timeout=TIMEOUT)
        except grpc.RpcError as exc:
            raise _error(exc) from None
        return op.convert(reply)

    def login(self, email: str, password: str) -> str:
        reply = self._run(_Op("Login", pb.LoginRequest(email=email, password=password), lambda r: r))
        self.token = reply.token
        return str(reply.token)

    def logout(self) -> None:
        self._run(_Op("Logout", pb.LogoutRequest(), lambda r: None))
        self.token = None

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattribute__(self, name: str) -> Any:
        attr = super().__getattribute__(name)
        if not name.startswith("_") and name in _Ops.__dict__:
            return lambda *a, **kw: self._run(attr(*a, **kw))
        return attr


class AsyncClient(_Ops):
    """Asyncio client (grpc.aio): ``await client.create_job(...)``."""

    def __init__(self, address: str = DEFAULT_ADDR, token: str | None = None) -> None:
        self._channel = grpc.aio.insecure_channel(address)
        self._stub = jobs_pb2_grpc.JobServiceStub(self._channel)
        self.token = token

    async def _run(self, op: _Op) -> Any:
        meta = (("authorization", f"Bearer {self.token}"),) if self.token else ()
        try:
            reply = await getattr(self._stub, op.rpc)(op.request, metadata=meta, timeout=TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            raise _error(exc) from None
        return op.convert(reply)

    async def login(self, email: str, password: str) -> str:
        reply = await self._run(_Op("Login", pb.LoginRequest(email=email, password=password), lambda r: r))
        self.token = reply.token
        return str(reply.token)

    async def logout(self) -> None:
        await self._run(_Op("Logout", pb.LogoutRequest(), lambda r: None))
        self.token = None

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __getattribute__(self, name: str) -> Any:
        attr = super().__getattribute__(name)
        if not name.startswith("_") and name in _Ops.__dict__:
            return lambda *a, **kw: self._run(attr(*a, **kw))
        return attr
