"""Jobs: create (JSON, or a YAML file of jobs), read, change, run, pause, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response

from cronfleet.codec import jsonapi
from cronfleet.errors import InvalidArgument, InvalidSpec
from cronfleet.models import JobSpec
from gateway.http import schemas as S
from gateway.http.common import Caller, Service, read_body, read_object
from gateway.http.openapi import doc

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])
# A client that retries with the same key gets the first reply, and nothing twice.
MAX_JOBS_PER_FILE = 100
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x20-\x7e]+$"),
]


def specs_from_yaml(doc: Any) -> list[JobSpec]:
    """The CI form: ``jobs:`` a list of jobs, each named in errors as ``jobs[i]``."""
    if not isinstance(doc, dict) or not isinstance(doc.get("jobs"), list) or not doc["jobs"]:
        raise InvalidArgument("a YAML body needs a non-empty 'jobs:' list", field="jobs")
    if len(doc["jobs"]) > MAX_JOBS_PER_FILE:
        raise InvalidSpec(f"must have at most {MAX_JOBS_PER_FILE} jobs", field="jobs")
    specs = []
    for i, item in enumerate(doc["jobs"]):
        if not isinstance(item, dict):
            raise InvalidArgument("must be a mapping", field=f"jobs[{i}]")
        try:
            specs.append(jsonapi.spec_from_json(item))
        except InvalidArgument as exc:
            exc.field = f"jobs[{i}].{exc.field}"
            raise
    return specs


@router.post(
    "",
    status_code=201,
    **doc(201, S.JobReply | S.JobsReply, body=S.JobBody, yaml_body=True, errors=(400, 409, 422, 429)),
)
async def create_job(
    request: Request, service: Service, user: Caller, idempotency_key: IdempotencyKey = None
) -> dict[str, Any]:
    body = await read_body(request)
    if isinstance(body, dict) and "jobs" in body and "name" not in body:
        jobs = await service.create_jobs(user, specs_from_yaml(body), idempotency_key)
        return {"jobs": [jsonapi.job_to_json(j) for j in jobs]}
    (job,) = await service.create_jobs(user, [jsonapi.spec_from_json(body)], idempotency_key)
    return jsonapi.job_to_json(job)


@router.get("", **doc(200, S.JobPage, errors=(400, 422)))
async def list_jobs(
    service: Service,
    user: Caller,
    status: str | None = None,
    limit: int | None = None,
    page_token: str | None = None,
    q: str | None = None,
    recent: int = 0,
    result: str | None = None,
) -> dict[str, Any]:
    jobs, nxt = await service.list_jobs(user, status, limit, page_token, q, recent, result)
    return {"jobs": [jsonapi.job_to_json(j) for j in jobs], "next_page_token": nxt}


@router.get("/{job_id}", **doc(200, S.JobReply, errors=(404,)))
async def get_job(job_id: str, service: Service, user: Caller) -> dict[str, Any]:
    return jsonapi.job_to_json(await service.get_job(user, job_id))


@router.put("/{job_id}", **doc(200, S.JobReply, body=S.JobBody, errors=(400, 404, 422)))
async def replace_job(job_id: str, request: Request, service: Service, user: Caller) -> dict[str, Any]:
    spec = jsonapi.spec_from_json(await read_body(request))
    return jsonapi.job_to_json(await service.replace_job(user, job_id, spec))


@router.patch("/{job_id}", **doc(200, S.JobReply, body=S.JobFields, errors=(400, 404, 422)))
async def update_job(job_id: str, request: Request, service: Service, user: Caller) -> dict[str, Any]:
    changes = jsonapi.changes_from_json(await read_body(request))
    return jsonapi.job_to_json(await service.update_job(user, job_id, changes))


@router.delete("/{job_id}", status_code=204, **doc(204, errors=(400, 404)))
async def delete_job(job_id: str, service: Service, user: Caller, cancel_running: bool = False) -> Response:
    await service.delete_job(user, job_id, cancel_running)
    return Response(status_code=204)


@router.post("/{job_id}/run", status_code=202, **doc(202, S.ExecutionReply, errors=(400, 404, 409, 422, 429)))
async def run_job(
    job_id: str, service: Service, user: Caller, idempotency_key: IdempotencyKey = None
) -> dict[str, Any]:
    return jsonapi.execution_to_json(await service.run_job(user, job_id, idempotency_key))


@router.post("/{job_id}/pause", **doc(200, S.JobReply, errors=(404, 409)))
async def pause_job(job_id: str, service: Service, user: Caller) -> dict[str, Any]:
    return jsonapi.job_to_json(await service.pause_job(user, job_id))


@router.post("/{job_id}/resume", **doc(200, S.JobReply, errors=(404, 409, 422)))
async def resume_job(job_id: str, service: Service, user: Caller) -> dict[str, Any]:
    return jsonapi.job_to_json(await service.resume_job(user, job_id))


@router.post(
    "/{job_id}/backfill",
    status_code=202,
    **doc(202, S.ExecutionsReply, body=S.BackfillBody, errors=(400, 404, 422, 429)),
)
async def backfill_job(job_id: str, request: Request, service: Service, user: Caller) -> dict[str, Any]:
    body = await read_object(request, ("from", "to"))
    for name in ("from", "to"):
        if body.get(name) is None:
            raise InvalidArgument("is required", field=name)
    start, end = jsonapi.parse_time(body["from"], "from"), jsonapi.parse_time(body["to"], "to")
    created = await service.backfill_job(user, job_id, start, end)
    return {"executions": [jsonapi.execution_to_json(e) for e in created]}


@router.get("/{job_id}/executions", **doc(200, S.ExecutionPage, errors=(400, 404)))
async def job_executions(
    job_id: str,
    service: Service,
    user: Caller,
    status: str | None = None,
    limit: int | None = None,
    page_token: str | None = None,
) -> dict[str, Any]:
    executions, nxt = await service.list_executions(
        user, job_id=job_id, status=status, limit=limit, page_token=page_token
    )
    return {"executions": [jsonapi.execution_to_json(e) for e in executions], "next_page_token": nxt}
