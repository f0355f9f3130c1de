"""The gRPC JobService: the caller from the bearer metadata, the service
layer, the proto codec. Errors become status codes in ``cronfleet.rpc``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TypeAlias

import grpc

from cronfleet.codec import proto
from cronfleet.errors import InvalidArgument
from cronfleet.records import User
from cronfleet.v1 import jobs_pb2 as pb
from cronfleet.v1 import jobs_pb2_grpc
from gateway.http.cluster import ClusterSource
from gateway.service import JobsService

Context: TypeAlias = grpc.aio.ServicerContext


def bearer(context: Context) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str) and value.lower().startswith("bearer "):
            return value[7:].strip()
    return None


def idempotency_key(context: Context) -> str | None:
    """The ``idempotency-key`` metadata (HTTP's Idempotency-Key header)."""
    for key, value in context.invocation_metadata() or ():
        if key == "idempotency-key" and isinstance(value, str):
            return value
    return None


def peer_address(context: Context) -> str | None:
    """The client's address from gRPC's peer ("ipv4:1.2.3.4:5", "ipv6:[::1]:5"),
    for the per-address limits; None for a Unix socket."""
    peer = context.peer() or ""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0]
    if kind == "ipv6":
        return rest.rpartition(":")[0].strip("[]")
    return None


class JobServicer(jobs_pb2_grpc.JobServiceServicer):
    def __init__(self, service: JobsService, cluster: ClusterSource) -> None:
        self.svc = service
        self.cluster = cluster

    async def _user(self, context: Context) -> User:
        return await self.svc.authenticate(bearer(context))

    # ---------------------------------------------------------------- auth
    async def Signup(self, request: pb.SignupRequest, context: Context) -> pb.User:
        user = await self.svc.signup(request.name, request.email, request.password, peer_address(context))
        return proto.user_to_proto(user)

    async def Login(self, request: pb.LoginRequest, context: Context) -> pb.LoginResponse:
        token, expires = await self.svc.login(request.email, request.password, peer_address(context))
        return pb.LoginResponse(token=token, expires_at=proto.timestamp(expires))

    async def Logout(self, request: pb.LogoutRequest, context: Context) -> pb.LogoutResponse:
        await self._user(context)
        await self.svc.logout(bearer(context) or "")
        return pb.LogoutResponse()

    async def GetMe(self, request: pb.GetMeRequest, context: Context) -> pb.User:
        return proto.user_to_proto(await self._user(context))

    async def UpdateMe(self, request: pb.UpdateMeRequest, context: Context) -> pb.User:
        user = await self._user(context)
        updated = await self.svc.update_me(
            user,
            request.name if request.HasField("name") else None,
            request.email if request.HasField("email") else None,
            request.password if request.HasField("password") else None,
            proto.notify_from_proto(request.notify.targets) if request.HasField("notify") else None,
            peer_address(context),
        )
        return proto.user_to_proto(updated)

    # ---------------------------------------------------------------- jobs
    async def CreateJob(self, request: pb.CreateJobRequest, context: Context) -> pb.Job:
        user = await self._user(context)
        (job,) = await self.svc.create_jobs(
            user, [proto.spec_from_proto(request.spec)], idempotency_key(context)
        )
        return proto.job_to_proto(job)

    async def ListJobs(self, request: pb.ListJobsRequest, context: Context) -> pb.ListJobsResponse:
        user = await self._user(context)
        jobs, nxt = await self.svc.list_jobs(
            user,
            request.status or None,
            request.limit,
            request.page_token or None,
            request.q or None,
            request.recent,
            request.result or None,
        )
        return pb.ListJobsResponse(jobs=[proto.job_to_proto(j) for j in jobs], next_page_token=nxt)

    async def GetJob(self, request: pb.GetJobRequest, context: Context) -> pb.Job:
        user = await self._user(context)
        return proto.job_to_proto(await self.svc.get_job(user, request.id))

    async def ReplaceJob(self, request: pb.ReplaceJobRequest, context: Context) -> pb.Job:
        user = await self._user(context)
        return proto.job_to_proto(
            await self.svc.replace_job(user, request.id, proto.spec_from_proto(request.spec))
        )

    async def UpdateJob(self, request: pb.UpdateJobRequest, context: Context) -> pb.Job:
        user = await self._user(context)
        changes = proto.changes_from_proto(request.spec, request.update_mask)
        return proto.job_to_proto(await self.svc.update_job(user, request.id, changes))

    async def DeleteJob(self, request: pb.DeleteJobRequest, context: Context) -> pb.DeleteJobResponse:
        user = await self._user(context)
        await self.svc.delete_job(user, request.id, request.cancel_running)
        return pb.DeleteJobResponse()

    async def RunJob(self, request: pb.RunJobRequest, context: Context) -> pb.Execution:
        user = await self._user(context)
        return proto.execution_to_proto(await self.svc.run_job(user, request.id, idempotency_key(context)))

    async def PauseJob(self, request: pb.PauseJobRequest, context: Context) -> pb.Job:
        user = await self._user(context)
        return proto.job_to_proto(await self.svc.pause_job(user, request.id))

    async def ResumeJob(self, request: pb.ResumeJobRequest, context: Context) -> pb.Job:
        user = await self._user(context)
        return proto.job_to_proto(await self.svc.resume_job(user, request.id))

    async def BackfillJob(self, request: pb.BackfillJobRequest, context: Context) -> pb.BackfillJobResponse:
        user = await self._user(context)
        for name in ("start", "end"):
            if not request.HasField(name):
                raise InvalidArgument("is required", field=name)
        created = await self.svc.backfill_job(
            user, request.id, proto.to_datetime(request.start), proto.to_datetime(request.end)
        )
        return pb.BackfillJobResponse(executions=[proto.execution_to_proto(e) for e in created])

    # ---------------------------------------------------------- executions
    async def ListExecutions(
        self, request: pb.ListExecutionsRequest, context: Context
    ) -> pb.ListExecutionsResponse:
        user = await self._user(context)
        executions, nxt = await self.svc.list_executions(
            user,
            job_id=request.job_id or None,
            status=request.status or None,
            worker_id=request.worker_id or None,
            limit=request.limit,
            page_token=request.page_token or None,
        )
        return pb.ListExecutionsResponse(
            executions=[proto.execution_to_proto(e) for e in executions], next_page_token=nxt
        )

    async def GetExecution(self, request: pb.GetExecutionRequest, context: Context) -> pb.Execution:
        user = await self._user(context)
        return proto.execution_to_proto(await self.svc.get_execution(user, request.id))

    async def GetExecutionLogs(
        self, request: pb.GetExecutionLogsRequest, context: Context
    ) -> pb.ExecutionLogs:
        user = await self._user(context)
        return pb.ExecutionLogs(data=await self.svc.execution_logs(user, request.id))

    async def FollowExecutionLogs(
        self, request: pb.GetExecutionLogsRequest, context: Context
    ) -> AsyncIterator[pb.ExecutionLogs]:
        user = await self._user(context)
        async for chunk in self.svc.follow_logs(user, request.id):
            yield pb.ExecutionLogs(data=chunk)

    async def CancelExecution(self, request: pb.CancelExecutionRequest, context: Context) -> pb.Execution:
        user = await self._user(context)
        return proto.execution_to_proto(await self.svc.cancel_execution(user, request.id))

    # -------------------------------------------------------- dead letters
    async def ListDeadLetters(
        self, request: pb.ListDeadLettersRequest, context: Context
    ) -> pb.ListDeadLettersResponse:
        user = await self._user(context)
        found, nxt = await self.svc.list_dead_letters(
            user, job_id=request.job_id or None, limit=request.limit, page_token=request.page_token or None
        )
        return pb.ListDeadLettersResponse(
            dead_letters=[proto.dead_letter_to_proto(d) for d in found], next_page_token=nxt
        )

    async def ReplayDeadLetter(self, request: pb.ReplayDeadLetterRequest, context: Context) -> pb.Execution:
        user = await self._user(context)
        return proto.execution_to_proto(await self.svc.replay_dead_letter(user, request.id))

    async def DeleteDeadLetter(
        self, request: pb.DeleteDeadLetterRequest, context: Context
    ) -> pb.DeleteDeadLetterResponse:
        user = await self._user(context)
        await self.svc.delete_dead_letter(user, request.id)
        return pb.DeleteDeadLetterResponse()

    # -------------------------------------------------------------- alerts
    async def ListAlerts(self, request: pb.ListAlertsRequest, context: Context) -> pb.ListAlertsResponse:
        user = await self._user(context)
        found, nxt = await self.svc.list_alerts(
            user, job_id=request.job_id or None, limit=request.limit, page_token=request.page_token or None
        )
        return pb.ListAlertsResponse(alerts=[proto.alert_to_proto(a) for a in found], next_page_token=nxt)

    async def NewWebhookSecret(
        self, request: pb.NewWebhookSecretRequest, context: Context
    ) -> pb.WebhookSecret:
        user = await self._user(context)
        return pb.WebhookSecret(secret=await self.svc.new_webhook_secret(user))

    # --------------------------------------------------------------- stats
    async def GetStats(self, request: pb.GetStatsRequest, context: Context) -> pb.Stats:
        user = await self._user(context)
        return proto.stats_to_proto(await self.svc.stats(user, request.job_id or None))

    # ----------------------------------------------------------- schedules
    async def PreviewSchedule(
        self, request: pb.PreviewScheduleRequest, context: Context
    ) -> pb.SchedulePreview:
        user = await self._user(context)
        found = await self.svc.preview_schedule(
            user,
            request.schedule,
            request.timezone or "UTC",
            proto.to_datetime(request.after) if request.HasField("after") else None,
            request.count if request.HasField("count") else 5,
        )
        return pb.SchedulePreview(
            next=[proto.timestamp(t) for t in found.next],
            description=found.description,
            warnings=found.warnings,
        )

    # ------------------------------------------------------------- cluster
    async def GetCluster(self, request: pb.GetClusterRequest, context: Context) -> pb.Cluster:
        await self._user(context)
        return await self.cluster()
