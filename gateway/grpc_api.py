"""The gRPC JobService: authenticates, calls JobsService, converts replies."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
import structlog

from cronfleet.errors import (
    Conflict,
    CronfleetError,
    InvalidArgument,
    NotFound,
    Unauthenticated,
    Unavailable,
)
from cronfleet.models import JobSpec
from cronfleet.v1 import jobs_pb2, jobs_pb2_grpc
from gateway import views
from gateway.service import JobsService, User

log = structlog.get_logger()
T = TypeVar("T")

GRPC_CODES: dict[type[CronfleetError], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    NotFound: grpc.StatusCode.NOT_FOUND,
    Conflict: grpc.StatusCode.FAILED_PRECONDITION,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
}


def grpc_code(exc: CronfleetError) -> grpc.StatusCode:
    for cls in type(exc).__mro__:
        if cls in GRPC_CODES:
            return GRPC_CODES[cls]  # type: ignore[index]
    return grpc.StatusCode.INTERNAL


def handle_errors(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Map the project's errors to gRPC status codes; bind a request id."""

    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> T:
        structlog.contextvars.bind_contextvars(request_id=uuid.uuid4().hex[:12], rpc=fn.__name__)
        try:
            return await fn(self, request, context)
        except CronfleetError as exc:
            context.set_trailing_metadata(
                (("cronfleet-error-code", exc.code), ("cronfleet-error-field", exc.field or ""))
            )
            await context.abort(grpc_code(exc), str(exc))
            raise  # unreachable
        finally:
            structlog.contextvars.clear_contextvars()

    return wrapper


def bearer(context: grpc.aio.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str) and value.lower().startswith("bearer "):
            return value[7:].strip()
    return None


class JobServicer(jobs_pb2_grpc.JobServiceServicer):
    def __init__(self, service: JobsService, cluster: Callable[[], Awaitable[jobs_pb2.Cluster]]) -> None:
        self.svc = service
        self.cluster = cluster

    async def _user(self, context: grpc.aio.ServicerContext) -> User:
        return await self.svc.authenticate(bearer(context))

    @handle_errors
    async def Signup(
        self, request: jobs_pb2.SignupRequest, context: grpc.aio.ServicerContext
    ) -> jobs_pb2.User:
        return views.user_proto(await self.svc.signup(request.name, request.email, request.password))

    @handle_errors
    async def Login(
        self, request: jobs_pb2.LoginRequest, context: grpc.aio.ServicerContext
    ) -> jobs_pb2.LoginResponse:
        token, expires = await self.svc.login(request.email, request.password)
        return jobs_pb2.LoginResponse(token=token, expires_at=views.timestamp(expires))

    @handle_errors
    async def Logout(
        self, request: jobs_pb2.LogoutRequest, context: grpc.aio.ServicerContext
    ) -> jobs_pb2.LogoutResponse:
        await self._user(context)
        await self.svc.logout(bearer(context) or "")
        return jobs_pb2.LogoutResponse()

    @handle_errors
    async def GetMe(self, request: jobs_pb2.GetMeRequest, context: grpc.aio.ServicerContext) -> jobs_pb2.User:
        user = await self._user(context)
        return views.user_proto(vars(user))

    @handle_errors
    async def UpdateMe(
        self, request: jobs_pb2.UpdateMeRequest, context: grpc.aio.ServicerContext
    ) -> jobs_pb2.User:
        user = await self._user(context)
        row = await self.svc.update_me(
            user,
            request.name if request.HasField("name") else None,
            request.email if request.HasField("email") else None,
            request.password if request.HasField("password") else None,
        )
        return views.user_proto(row)

    @handle_errors
    async def CreateJob(
        self, request: jobs_pb2.CreateJobRequest, context: grpc.aio.ServicerContext
    ) -> jobs_pb2.Job:
        user = await self._user(context)
        spec = JobSpec.from_mapping(views.spec_from_proto(request.spec))
        (row,) = await self.svc.create_jobs(user, [spec])
        return views.job_proto(row)

    @handle_errors
    async def ListJobs(
        self, request: jobs_pb2.ListJobsRequest, context: grpc.aio.ServicerContext
    ) -> jobs_pb2.ListJobsResponse:
        user = await self._user(context)
        rows, nxt = await self.svc.list_jobs(
            user, request.status or None, request.limit, request.page_token or None
        )
        return jobs_pb2.ListJobsResponse(jobs=[views.job_proto(r) for r in rows], next_page_token=nxt)

    @handle_errors
    async def GetJob(
        self, request: jobs_pb2.GetJobRequest, context: grpc.aio.ServicerContext
    ) -> jobs_pb2.Job:
        user = await self._user(context)
        return views.job_proto(await self.svc.get_job(user, request.id))

    @handle_errors
    async def ReplaceJob(
        self, request: jobs_pb2.ReplaceJobRequest, context: grpc.aio.ServicerContext
    ) -> jobs_pb2.Job:
        user = await self._user(context)
        spec = JobSpec.from_mapping(views.spec_from_proto(request.spec))
        return views.job_proto(await self.svc.replace_job(user, request.id, spec))

    @handle_errors
    async def UpdateJob(
        self, request: jobs_pb2.UpdateJobRequest, context: grpc.aio.ServicerContext
    ) -> jobs_pb2.Job:
        user = await self._user(context)
        changes = views.spec_from_proto(request.spec, only=list(request.update_mask))
        return views.job_proto(await self.svc.update_job(user, request.id, changes))

    @handle_errors
    async def DeleteJob(
        self, request: jobs_pb2.DeleteJobRequest, context: grpc.aio.ServicerContext
    ) -> jobs_pb2.DeleteJobResponse:
        user = await self._user(context)
        await self.svc.delete_job(user, request.id)
        return jobs_pb2.DeleteJobResponse()

    @handle_errors
    async def RunJob(
        self, request: jobs_pb2.RunJobRequest, context: grpc.aio.ServicerContext
    ) -> jobs_pb2.Execution:
        user = await self._user(context)
        row = await self.svc.run_job(user, request.id)
        return views.execution_proto(await views.execution_json(row, self.svc.logs))

    @handle_errors
    async def PauseJob(
        self, request: jobs_pb2.PauseJobRequest, context: grpc.aio.ServicerContext
    ) -> jobs_pb2.Job:
        user = await self._user(context)
        return views.job_proto(await self.svc.pause_job(user, request.id))

    @handle_errors
    async def ResumeJob(
        self, request: jobs_pb2.ResumeJobRequest, context: grpc.aio.ServicerContext
    ) -> jobs_pb2.Job:
        user = await self._user(context)
        return views.job_proto(await self.svc.resume_job(user, request.id))

    @handle_errors
    async def ListExecutions(
        self, request: jobs_pb2.ListExecutionsRequest, context: grpc.aio.ServicerContext
    ) -> jobs_pb2.ListExecutionsResponse:
        user = await self._user(context)
        rows, nxt = await self.svc.list_executions(
            user,
            job_id=request.job_id or None,
            status=request.status or None,
            worker_id=request.worker_id or None,
            limit=request.limit,
            page_token=request.page_token or None,
        )
        items = [views.execution_proto(await views.execution_json(r, self.svc.logs)) for r in rows]
        return jobs_pb2.ListExecutionsResponse(executions=items, next_page_token=nxt)

    @handle_errors
    async def GetExecution(
        self, request: jobs_pb2.GetExecutionRequest, context: grpc.aio.ServicerContext
    ) -> jobs_pb2.Execution:
        user = await self._user(context)
        row = await self.svc.get_execution(user, request.id)
        return views.execution_proto(await views.execution_json(row, self.svc.logs))

    @handle_errors
    async def GetExecutionLogs(
        self, request: jobs_pb2.GetExecutionLogsRequest, context: grpc.aio.ServicerContext
    ) -> jobs_pb2.ExecutionLogs:
        user = await self._user(context)
        return jobs_pb2.ExecutionLogs(data=await self.svc.execution_logs(user, request.id))

    @handle_errors
    async def CancelExecution(
        self, request: jobs_pb2.CancelExecutionRequest, context: grpc.aio.ServicerContext
    ) -> jobs_pb2.Execution:
        user = await self._user(context)
        row = await self.svc.cancel_execution(user, request.id)
        return views.execution_proto(await views.execution_json(row, self.svc.logs))

    @handle_errors
    async def GetCluster(
        self, request: jobs_pb2.GetClusterRequest, context: grpc.aio.ServicerContext
    ) -> jobs_pb2.Cluster:
        await self._user(context)
        return await self.cluster()
