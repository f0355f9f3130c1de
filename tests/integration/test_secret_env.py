"""Secret env values on real Postgres and real roles (in this process):
sealed in the row, "***" in every reply, kept by "***" on an update, opened
by the scheduler for the worker (over mutual TLS) and seen by the run, and
never in a log event."""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
import structlog

from cronfleet.codec import jsonapi, proto
from cronfleet.db import Database
from cronfleet.errors import Conflict, InvalidSpec
from cronfleet.logstore import LocalLogStore
from cronfleet.models import Job, JobSpec, Secret
from cronfleet.records import Execution, User
from cronfleet.sealing import SecretKey
from gateway.service import JobsService
from tests.helpers import assert_eventually, job_spec
from tests.integration.nodes import Cluster
from tests.integration.nodes import cluster as cluster  # fixtures
from tests.integration.nodes import roles as roles
from tests.integration.nodes import settings as settings
from tests.integration.nodes import shards as shards
from worker.process_runtime import ProcessRuntime

pytestmark = pytest.mark.integration
VALUE = f"s3cr3t-{uuid.uuid4().hex}"  # unique: found nowhere unless leaked
STARS = {"value": "***", "secret": True}
SPEC_FIELDS = {f.name for f in dataclasses.fields(JobSpec)}


def secret_job(**fields: object) -> JobSpec:
    return job_spec(env={"TOKEN": {"value": VALUE, "secret": True}, "MODE": "prod"}, **fields)


async def stored_text(db: Database) -> str:
    """Every row of every table that could hold a job's spec or a request, as text."""
    async with await psycopg.AsyncConnection.connect(db.url) as conn:
        texts = []
        for table in ("jobs", "idempotency_keys", "executions", "alerts"):
            cur = await conn.execute(f"SELECT coalesce(string_agg(t::text, ' '), '') FROM {table} t")  # noqa: S608
            row = await cur.fetchone()
            texts.append(str(row[0]) if row else "")
        return " ".join(texts)


async def test_a_secret_is_sealed_in_its_row_and_stars_in_every_reply(
    service: JobsService, user: User, db: Database, secret_key: SecretKey
) -> None:
    (job,) = await service.create_jobs(user, [secret_job(schedule="@yearly")], idempotency_key="k1")
    for seen in (
        job,
        await service.get_job(user, str(job.id)),
        (await service.list_jobs(user, None, 10, None))[0][0],
    ):
        assert jsonapi.job_to_json(seen)["env"] == {"TOKEN": STARS, "MODE": "prod"}
        assert proto.job_to_proto(seen).spec.env["TOKEN"] == "***"
    text = await stored_text(db)
    assert VALUE not in text
    assert f"v1.{secret_key.id}." in text, "sealed with the gateway's key"

    # The same request under the key is the same job; another secret under it is another request.
    (again,) = await service.create_jobs(user, [secret_job(schedule="@yearly")], idempotency_key="k1")
    assert again.id == job.id
    with pytest.raises(Conflict):
        await service.create_jobs(
            user,
            [job_spec(schedule="@yearly", env={"TOKEN": {"value": "other", "secret": True}, "MODE": "prod"})],
            idempotency_key="k1",
        )


async def test_stars_sent_back_keep_the_value_and_a_new_value_replaces_it(
    service: JobsService, user: User
) -> None:
    (job,) = await service.create_jobs(user, [secret_job(schedule="@yearly")])
    sealed = job.spec.env["TOKEN"]
    assert isinstance(sealed, Secret) and sealed.sealed
    # The dashboard's edit form: the reply's JSON sent back (PUT), one field changed.
    body = jsonapi.job_to_json(job) | {"priority": 8}
    edited = jsonapi.spec_from_json({k: v for k, v in body.items() if k in SPEC_FIELDS})
    replaced = await service.replace_job(user, str(job.id), edited)
    assert replaced.spec.env["TOKEN"] == sealed and replaced.spec.priority == 8
    patched = await service.update_job(user, str(job.id), {"timeout_seconds": 60})
    assert patched.spec.env["TOKEN"] == sealed, "a PATCH that leaves env alone keeps it"
    renewed = await service.update_job(
        user, str(job.id), jsonapi.changes_from_json({"env": {"TOKEN": {"value": "new", "secret": True}}})
    )
    assert isinstance(renewed.spec.env["TOKEN"], Secret) and renewed.spec.env["TOKEN"] != sealed
    assert "MODE" not in renewed.spec.env, "a PATCH of env replaces it whole"
    with pytest.raises(InvalidSpec, match="has none") as err:
        await service.create_jobs(user, [job_spec(env={"TOKEN": STARS})])
    assert err.value.field == "env.TOKEN"


async def test_a_gateway_without_a_key_refuses_secrets_and_stores_nothing(
    db: Database, user: User, tmp_path: Path, service: JobsService
) -> None:
    keyless = JobsService(db, LocalLogStore(tmp_path, "http://gw"), shards=256, token_ttl=timedelta(hours=1))
    with pytest.raises(InvalidSpec, match="no secret key") as err:
        await keyless.create_jobs(user, [secret_job()])
    assert err.value.field == "env.TOKEN"
    assert (await keyless.list_jobs(user, None, 10, None))[0] == []
    (plain,) = await keyless.create_jobs(user, [job_spec(schedule="@yearly", env={"MODE": "x"})])
    assert plain.spec.env == {"MODE": "x"}, "plain env needs no key"


async def test_the_run_sees_its_secret_and_no_log_event_does(
    cluster: Cluster, service: JobsService, user: User, secret_key: SecretKey, db: Database
) -> None:
    cluster.settings = dataclasses.replace(
        cluster.settings, secret_key=secret_key.encoded(), log_level="debug"
    )
    digest = hashlib.sha256(VALUE.encode()).hexdigest()  # the command must not hold the value itself
    check = (
        f'printf %s "$TOKEN" | sha256sum | grep -q {digest} && test "$MODE" = prod && echo the token is right'
    )
    with structlog.testing.capture_logs() as events:
        cluster.coordinator()
        cluster.scheduler("s1")
        cluster.worker("w1", ProcessRuntime(1.0))
        await cluster.ready()
        (job,) = await service.create_jobs(user, [secret_job(command=check)])
        run = await assert_eventually(lambda: ended(service, user, job), timeout=20, what="the run ended")
    assert run.status == "succeeded", run.error
    assert b"the token is right" in await service.execution_logs(user, str(run.id))
    assert events and VALUE not in str(events)
    assert VALUE not in await stored_text(db)


async def test_a_scheduler_with_another_key_runs_nothing_and_says_why(
    cluster: Cluster, service: JobsService, user: User
) -> None:
    cluster.settings = dataclasses.replace(cluster.settings, secret_key=SecretKey.generate().encoded())
    cluster.coordinator()
    cluster.scheduler("s1")
    cluster.worker("w1", ProcessRuntime(1.0))
    await cluster.ready()
    (job,) = await service.create_jobs(user, [secret_job(command="echo ran > /dev/null")])
    run = await assert_eventually(lambda: ended(service, user, job), timeout=20, what="the run ended")
    assert run.status == "failed" and run.started_at is None
    assert run.error and run.error.startswith("secret_unavailable: env TOKEN: sealed with key")
    assert VALUE not in run.error


async def ended(service: JobsService, user: User, job: Job) -> Execution | None:
    found, _ = await service.list_executions(user, job_id=str(job.id), limit=10)
    return next((e for e in found if e.finished_at is not None), None)
