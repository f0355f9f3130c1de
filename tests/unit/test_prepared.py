"""The scheduler's prepared jobs: what workers get of a job, decoded once per
distinct stored content, never shared where a secret is sealed to one job."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cronfleet import schedule, sealing
from cronfleet.codec import jsonapi, rows
from cronfleet.db import queries
from cronfleet.models import JobSpec
from cronfleet.sealing import SecretKey
from cronfleet.v1 import dispatch_pb2
from scheduler.claim import decide_fires
from scheduler.prepared import JobCache
from worker.runtime import RunSpec

KEY = SecretKey.generate()
RowOf = Callable[..., dict[str, Any]]


def job_row(spec: JobSpec, job_id: uuid.UUID | None = None, version: int = 1) -> dict[str, Any]:
    """A ``jobs`` row, every column (as claim_pending reads it)."""
    params = rows.job_params(spec)
    return params | {"id": job_id or uuid.uuid4(), "version": version, "spec": params["spec"].obj}


def claim_row(spec: JobSpec, job_id: uuid.UUID | None = None, version: int = 1) -> dict[str, Any]:
    """The same row as select_due_fires reads it: the document as its text."""
    row = job_row(spec, job_id, version)
    return {k: v for k, v in row.items() if k != "spec"} | {"spec_text": json.dumps(row["spec"])}


ROW_FORMS = pytest.mark.parametrize("row_of", [job_row, claim_row], ids=["parsed", "text"])


def spec(**fields: Any) -> JobSpec:
    return jsonapi.spec_from_json({"name": "nightly", "command": "make report", **fields})


def test_workers_get_what_a_run_needs_not_the_jobs_name_or_timing() -> None:
    prepared = JobCache().get(
        job_row(spec(schedule="0 0 3 * * *", timezone="Europe/Paris", timeout_seconds=90, priority=9))
    )
    message = prepared.message
    assert (message.command, message.timeout_seconds) == ("make report", 90)
    assert (message.name, message.schedule, message.timezone, message.priority) == ("", "", "UTC", 5)


@ROW_FORMS
def test_jobs_that_differ_in_name_and_timing_share_one_entry(row_of: RowOf) -> None:
    cache = JobCache()
    first = cache.get(row_of(spec(name="a", run_at="2030-01-01T00:00:00Z")))
    second = cache.get(row_of(spec(name="b", run_at="2030-01-02T00:00:00Z")))
    assert second is first
    assert cache.get(row_of(spec(name="c", timeout_seconds=5))) is not first, "a run field differs"
    assert cache.get(row_of(spec(name="d", command="make other"))) is not first
    assert cache.get(row_of(spec(name="e", misfire_policy="skip"))).misfire_policy == "skip"


def test_a_new_version_of_a_job_is_prepared_again() -> None:
    cache, job_id = JobCache(), uuid.uuid4()
    assert cache.get(job_row(spec(), job_id)).message.command == "make report"
    assert cache.get(job_row(spec(command="make v2"), job_id, version=2)).message.command == "make v2"


@ROW_FORMS
def test_a_sealed_secret_is_opened_for_its_own_job_only(row_of: RowOf) -> None:
    cache = JobCache(KEY)
    same = spec(env={"TOKEN": {"value": "s3cret", "secret": True}})
    a, b = uuid.uuid4(), uuid.uuid4()
    first = cache.get(row_of(sealing.seal_env(same, KEY, a), a))
    second = cache.get(row_of(sealing.seal_env(same, KEY, b), b))
    assert first is not second
    assert first.message.env["TOKEN"] == second.message.env["TOKEN"] == "s3cret"
    assert not first.refused and not second.refused
    # A value sealed to another job does not open here: refused, not shared.
    moved = cache.get(row_of(sealing.seal_env(same, KEY, a), uuid.uuid4()))
    assert moved.refused.startswith("secret_unavailable")


def test_a_worker_builds_the_run_the_job_describes() -> None:
    """Every field a worker's RunSpec reads of the job is among RUN_FIELDS:
    one left out would be dropped on the way without a word."""
    stepped = spec(
        command=None,
        steps=[{"name": "build", "run": "make"}, {"name": "test", "run": "make test"}],
        image="alpine:3",
        env={"A": "1"},
        timeout_seconds=77,
        resources={"cpus": 0.5, "memory_mb": 64, "pids": 32},
        container="per_job",
    )
    called = spec(command=None, http={"url": "https://example.com/hook", "method": "POST"})
    for job in (stepped, called):
        message = JobCache().get(job_row(job)).message
        assignment = dispatch_pb2.Assignment(execution_id=7, job_id=str(uuid.uuid4()), attempt=1, job=message)
        run = RunSpec.from_assignment(assignment, Path("/spool"))
        assert (run.command, run.steps, run.image, run.env) == (
            job.command or "",
            job.steps,
            job.image or "",
            job.env,
        )
        assert (run.timeout_seconds, run.resources, run.http, run.container) == (
            job.timeout_seconds,
            job.resources,
            job.http,
            job.container,
        )


def test_the_claim_reads_every_column_a_new_content_is_prepared_from() -> None:
    """select_due_fires names its columns (the spec as text): one of
    rows.JOB_COLUMNS left out would fail the first claim of a new job."""
    select = queries["select_due_fires"]
    named = set(re.findall(r"\bj\.(\w+)\b", select))
    missing = [c for c in (*rows.JOB_COLUMNS, "id", "version", "owner_id", "created_at") if c not in named]
    assert not missing, f"select_due_fires does not read jobs.{missing}"


def test_jobs_that_fire_alike_are_decided_once_a_claim_and_each_keeps_its_own_timing() -> None:
    """decide_fires: every-second jobs due at one instant share one decision;
    @every jobs count from their own creation; a misfired one and a one-off
    are decided by their own policy."""
    now = datetime(2026, 12, 5, 12, 0, 0, 300000, tzinfo=UTC)
    due = now.replace(microsecond=0)

    def row(schedule: str | None, created: datetime = due, at: datetime = due, **spec: Any) -> dict[str, Any]:
        r = claim_row(JobSpec(command="true", schedule=schedule, **spec))
        return r | {"next_run_at": at, "created_at": created}

    jobs = JobCache()
    due_rows = [
        row("* * * * * *"),
        row("* * * * * *"),
        row("@every 15s", created=due - timedelta(seconds=3)),
        row("@every 15s", created=due - timedelta(seconds=9)),
        row("* * * * * *", at=due - timedelta(minutes=10), misfire_policy="skip"),
        row(None),
    ]
    fires = decide_fires(
        due_rows, [jobs.get(r) for r in due_rows], now, timedelta(seconds=60), timedelta(hours=1)
    )
    assert fires[0] is fires[1] and fires[0] == schedule.ClaimedFire(due + timedelta(seconds=1))
    assert [f.next_run_at for f in fires[2:4]] == [due + timedelta(seconds=12), due + timedelta(seconds=6)]
    assert (fires[4].run, fires[4].misfired, fires[4].next_run_at) == (
        False,
        True,
        due + timedelta(seconds=1),
    )
    assert fires[5] is schedule.ONE_OFF_FIRE
