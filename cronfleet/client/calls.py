"""Each SDK call once, for both clients: its RPC, its request (typed by the
same codec the HTTP API uses) and how its reply reads as API.md's JSON; and
how a job is found by its name."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from cronfleet.client.transport import ClientError, Op, Reply, idempotency
from cronfleet.codec import jsonapi, proto
from cronfleet.errors import CronfleetError
from cronfleet.v1 import jobs_pb2 as pb


def _dict(msg: Message) -> Reply:
    return dict(MessageToDict(msg, preserving_proto_field_name=True))


def job_json(msg: pb.Job) -> Reply:
    """API.md's job, the same JSON the HTTP API sends."""
    return jsonapi.job_to_json(proto.job_from_proto(msg))


def execution_json(msg: pb.Execution) -> Reply:
    """API.md's execution, the same JSON the HTTP API sends."""
    return jsonapi.execution_to_json(proto.execution_from_proto(msg))


def _dead_letter(msg: pb.DeadLetter) -> Reply:
    return {**_dict(msg), "created_at": jsonapi.iso(proto.to_datetime(msg.created_at))}


def spec_message(fields: dict[str, Any]) -> pb.JobSpec:
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


def signup(name: str, email: str, password: str) -> Op[Reply]:
    return Op("Signup", pb.SignupRequest(name=name, email=email, password=password), _dict)


def login(email: str, password: str) -> Op[str]:
    return Op("Login", pb.LoginRequest(email=email, password=password), lambda r: str(r.token))


def logout() -> Op[None]:
    return Op("Logout", pb.LogoutRequest(), lambda _r: None)


def me() -> Op[Reply]:
    return Op("GetMe", pb.GetMeRequest(), _dict)


def create_job(spec: dict[str, Any], idempotency_key: str | None) -> Op[Reply]:
    return Op(
        "CreateJob", pb.CreateJobRequest(spec=spec_message(spec)), job_json, idempotency(idempotency_key)
    )


def list_jobs(status: str, limit: int, page_token: str, q: str, recent: int) -> Op[Reply]:
    return Op(
        "ListJobs",
        pb.ListJobsRequest(status=status, limit=limit, page_token=page_token, q=q, recent=recent),
        lambda r: {"jobs": [job_json(j) for j in r.jobs], "next_page_token": r.next_page_token},
    )


def get_job(job_id: str) -> Op[Reply]:
    return Op("GetJob", pb.GetJobRequest(id=job_id), job_json)


def replace_job(job_id: str, spec: dict[str, Any]) -> Op[Reply]:
    return Op("ReplaceJob", pb.ReplaceJobRequest(id=job_id, spec=spec_message(spec)), job_json)


def update_job(job_id: str, changes: dict[str, Any]) -> Op[Reply]:
    """Only the named fields change; a None value resets one to its default."""
    present = {k: v for k, v in changes.items() if v is not None}
    request = pb.UpdateJobRequest(id=job_id, spec=spec_message(present), update_mask=list(changes))
    return Op("UpdateJob", request, job_json)


def job_command(rpc: str, request: Message) -> Op[Reply]:
    return Op(rpc, request, job_json)


def list_executions(job_id: str, status: str, worker_id: str, limit: int, page_token: str) -> Op[Reply]:
    request = pb.ListExecutionsRequest(
        job_id=job_id, status=status, worker_id=worker_id, limit=limit, page_token=page_token
    )
    return Op(
        "ListExecutions",
        request,
        lambda r: {
            "executions": [execution_json(e) for e in r.executions],
            "next_page_token": r.next_page_token,
        },
    )


def list_dead_letters(job_id: str, limit: int, page_token: str) -> Op[Reply]:
    request = pb.ListDeadLettersRequest(job_id=job_id, limit=limit, page_token=page_token)
    return Op(
        "ListDeadLetters",
        request,
        lambda r: {
            "dead_letters": [_dead_letter(d) for d in r.dead_letters],
            "next_page_token": r.next_page_token,
        },
    )


def list_alerts(job_id: str, limit: int, page_token: str) -> Op[Reply]:
    def read(r: pb.ListAlertsResponse) -> Reply:
        alerts = [{**_dict(a), "event": json.loads(a.event_json)} for a in r.alerts]
        for a in alerts:
            a.pop("event_json", None)
        return {"alerts": alerts, "next_page_token": r.next_page_token}

    return Op("ListAlerts", pb.ListAlertsRequest(job_id=job_id, limit=limit, page_token=page_token), read)


def new_webhook_secret() -> Op[str]:
    return Op("NewWebhookSecret", pb.NewWebhookSecretRequest(), lambda r: str(r.secret))


def stats(job_id: str) -> Op[Reply]:
    return Op("GetStats", pb.GetStatsRequest(job_id=job_id), _dict)


def backfill(job_id: str, start: datetime | str, end: datetime | str) -> Op[Reply]:
    try:
        request = pb.BackfillJobRequest(
            id=job_id,
            start=proto.timestamp(jsonapi.parse_time(start, "from")),
            end=proto.timestamp(jsonapi.parse_time(end, "to")),
        )
    except CronfleetError as exc:
        raise ClientError(exc.code, exc.message, exc.field or "") from None
    return Op("BackfillJob", request, lambda r: {"executions": [execution_json(e) for e in r.executions]})


def preview(schedule: str, timezone: str, count: int) -> Op[Reply]:
    request = pb.PreviewScheduleRequest(schedule=schedule, timezone=timezone, count=count)
    return Op("PreviewSchedule", request, _preview_reply)


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


def follow_request(execution_id: str) -> pb.GetExecutionLogsRequest:
    return pb.GetExecutionLogsRequest(id=str(execution_id))


def logs(execution_id: str) -> Op[str]:
    request = pb.GetExecutionLogsRequest(id=str(execution_id))
    return Op("GetExecutionLogs", request, lambda r: r.data.decode(errors="replace"))
