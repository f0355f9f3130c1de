"""Alerts on a real Postgres, sent to a webhook receiver on loopback: which
events alert (failed, timed out, dead, recovered, missed; the job's notify or
the owner's default), and how the sender delivers (signed, the same bytes
each try, retried with backoff, a hanging receiver bounded, refused
destinations not called, a sender dying mid-delivery leaving it to another)."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest

from coordinator.alert_delivery import AlertSender
from cronfleet import alerts, outcomes
from cronfleet.codec.jsonapi import notify_from_json
from cronfleet.config import Settings
from cronfleet.db import Database
from cronfleet.models import Job
from cronfleet.outbound import OutboundPolicy
from cronfleet.records import Alert, User
from gateway.service import JobsService
from tests.helpers import Roles, assert_eventually, job_spec, new_user
from tests.integration.test_misfires import SHARDS, claim_until_dry, outage, sql
from tests.integration.test_misfires import owned as owned  # a fixture
from tests.integration.test_outcomes import attempts, finish
from tests.webhooks import Receiver, webhook_receiver

pytestmark = pytest.mark.integration
EVERY = ["failed", "dead", "timed_out", "recovered", "missed"]
FAST = dataclasses.replace(
    Settings(),
    http_allow_internal=True,
    alert_timeout_seconds=1.0,
    alert_retry_base_seconds=0.05,
    alert_poll_interval=0.05,
)


@pytest.fixture
def shards() -> int:
    return SHARDS


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as r:
        yield r


@pytest.fixture
async def roles() -> AsyncIterator[Roles]:
    r = Roles()
    yield r
    await r.close()


def notify(receiver: Receiver, path: str = "/hook", on: list[str] | None = None) -> list[dict[str, Any]]:
    """A job's notify field (API JSON): one webhook on the receiver."""
    return [{"webhook": receiver.url + path, "on": on or ["failed"]}]


def targets(*fields: dict[str, Any]) -> Any:
    """Notify targets, typed, from API JSON."""
    return notify_from_json(list(fields))


async def now(value: Any) -> Any:
    """``value`` as an awaitable, for assert_eventually on the receiver's lists."""
    return value


async def alerts_of(service: JobsService, user: User, job: Job) -> list[Alert]:
    found, _ = await service.list_alerts(user, job_id=str(job.id))
    return sorted(found, key=lambda a: a.id)


async def fail_then_retry(service: JobsService, db: Database, user: User, job: Job, *statuses: str) -> None:
    """Run the job now and end its attempts with ``statuses`` in turn."""
    fired = await service.run_job(user, str(job.id))
    for status in statuses:
        chain = [e for e in await attempts(service, user, job) if e.scheduled_at == fired.scheduled_at]
        await finish(db, chain[-1], status, exit_code=1 if status == "failed" else None)


# ------------------------------------------------------------ which events
async def test_each_failed_attempt_alerts_and_the_last_one_also_as_a_dead_letter(
    db: Database, service: JobsService, user: User, receiver: Receiver
) -> None:
    (job,) = await service.create_jobs(
        user, [job_spec(max_retries=1, retry={"backoff_seconds": 0}, notify=notify(receiver, on=EVERY))]
    )
    await fail_then_retry(service, db, user, job, "failed", "timed_out")
    found = await alerts_of(service, user, job)
    assert [a.kind for a in found] == ["failed", "timed_out", "dead"]
    first, second = await attempts(service, user, job)
    assert [a.execution_id for a in found] == [first.id, second.id, second.id]
    assert found[0].payload["exit_code"] == 1 and found[0].payload["attempt"] == 1
    assert "retries spent" in found[2].payload["detail"]
    assert all(
        d.status == "pending" and d.target == receiver.url + "/hook" for a in found for d in a.deliveries
    )
    await finish(db, second, "failed")  # the same report again (a worker's resend): nothing new
    assert len(await alerts_of(service, user, job)) == 3


async def test_a_target_hears_only_the_kinds_it_names(
    db: Database, service: JobsService, user: User, receiver: Receiver
) -> None:
    (job,) = await service.create_jobs(
        user, [job_spec(max_retries=1, retry={"backoff_seconds": 0}, notify=notify(receiver, on=["dead"]))]
    )
    await fail_then_retry(service, db, user, job, "failed", "failed")
    assert [a.kind for a in await alerts_of(service, user, job)] == ["dead"]


async def test_the_first_success_after_a_failure_recovers(
    db: Database, service: JobsService, user: User, receiver: Receiver
) -> None:
    (job,) = await service.create_jobs(user, [job_spec(notify=notify(receiver, on=["recovered"]))])
    for status in ("succeeded", "failed", "succeeded", "succeeded", "timed_out", "succeeded"):
        await fail_then_retry(service, db, user, job, status)
    found = await alerts_of(service, user, job)
    assert [a.kind for a in found] == ["recovered", "recovered"]
    runs = sorted(await attempts(service, user, job), key=lambda e: e.scheduled_at)
    assert [a.execution_id for a in found] == [runs[2].id, runs[5].id]


async def test_the_finish_tells_which_successes_anyone_hears_of_or_anything_follows(
    db: Database, service: JobsService, user: User, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The finish's write says, per success, whether a job runs after it and
    whether anyone hears of its job's recovery (the job's notify, or else the
    owner's default): only those are looked at again, and they still are."""
    user = await service.update_me(
        user, None, None, None, targets({"webhook": receiver.url + "/default", "on": ["recovered"]})
    )
    heard, unheard, upstream = await service.create_jobs(
        user,
        [
            job_spec(name="heard"),  # the owner's default hears its recovery
            job_spec(name="unheard", notify=notify(receiver, on=["failed"])),
            job_spec(name="upstream", notify=notify(receiver, on=["failed"])),
        ],
    )
    (downstream,) = await service.create_jobs(user, [job_spec(after=[{"job_id": str(upstream.id)}])])
    said: dict[Any, tuple[bool, bool]] = {}
    settle = outcomes.settle

    async def spy(tx: Any, ended: list[Any], *args: Any) -> Any:
        flagged = [r for r in ended if "has_downstream" in r]  # rows of the finish's write
        said.update({r["job_id"]: (r["has_downstream"], r["tells_recovery"]) for r in flagged})
        return await settle(tx, ended, *args)

    monkeypatch.setattr(outcomes, "settle", spy)
    await fail_then_retry(service, db, user, heard, "failed")
    for job in (heard, unheard, upstream):
        await fail_then_retry(service, db, user, job, "succeeded")
    assert said == {heard.id: (False, True), unheard.id: (False, False), upstream.id: (True, False)}
    assert [a.kind for a in await alerts_of(service, user, heard)] == ["recovered"]
    (child,) = await attempts(service, user, downstream)
    assert child.trigger == "upstream"


async def test_a_missed_fire_alerts(
    db: Database, service: JobsService, user: User, receiver: Receiver, owned: None
) -> None:
    skip, run_once = await service.create_jobs(
        user,
        [
            job_spec(
                name="skip",
                schedule="*/10 * * * * *",
                misfire_policy="skip",
                notify=notify(receiver, on=EVERY),
            ),
            job_spec(name="late", schedule="*/10 * * * * *", notify=notify(receiver, on=EVERY)),
        ],
    )
    for job in (skip, run_once):
        await outage(db, job, timedelta(minutes=10))
    await claim_until_dry(db)
    (skipped,) = await alerts_of(service, user, skip)
    assert skipped.kind == "missed" and skipped.payload["detail"] == "missed by 10m; misfire_policy skip"
    assert skipped.payload["status"] == "skipped"
    (late,) = await alerts_of(service, user, run_once)
    assert late.kind == "missed" and late.payload["trigger"] == "misfire"


async def test_a_fire_skipped_by_the_concurrency_limit_is_missed(
    db: Database, service: JobsService, user: User, receiver: Receiver, owned: None
) -> None:
    (job,) = await service.create_jobs(
        user,
        [
            job_spec(
                # Daily: the claim's next fire is never due within the test (with */10 it
                # was, one run in ten, when the two claims straddled a 10 s boundary).
                schedule="@daily",
                concurrency_policy="forbid",
                notify=notify(receiver, on=["missed"]),
            )
        ],
    )
    for _ in range(2):  # the first fire stays scheduled (no worker here): the second has no room
        await sql(
            db, "UPDATE schedule SET next_run_at = now() - interval '1 second' WHERE job_id = %s", job.id
        )
        await claim_until_dry(db)
    (alert,) = await alerts_of(service, user, job)
    assert alert.kind == "missed" and alert.payload["status"] == "skipped"
    assert alert.payload["detail"] == "skipped: the job's concurrency limit was reached"


async def test_the_owners_default_notify_is_for_jobs_that_set_none(
    db: Database, service: JobsService, user: User, receiver: Receiver
) -> None:
    default = targets({"webhook": receiver.url + "/default", "on": ["failed"]})
    user = await service.update_me(user, None, None, None, default)
    own, defaulted = await service.create_jobs(
        user, [job_spec(name="own", notify=notify(receiver, "/own", ["failed"])), job_spec(name="defaulted")]
    )
    for job in (own, defaulted):
        await fail_then_retry(service, db, user, job, "failed")
    (a,) = await alerts_of(service, user, own)
    assert [d.target for d in a.deliveries] == [receiver.url + "/own"]
    (b,) = await alerts_of(service, user, defaulted)
    assert [d.target for d in b.deliveries] == [receiver.url + "/default"]
    other = await new_user(service, "bob")
    assert await service.list_alerts(other) == ([], ""), "a user sees only their own alerts"


# ------------------------------------------------------------ delivery
async def test_deliveries_are_signed_and_carry_the_alert(
    db: Database, service: JobsService, user: User, receiver: Receiver, roles: Roles
) -> None:
    secret = await service.new_webhook_secret(user)
    slack_url = receiver.url + "/services/T0/B0/x"
    (job,) = await service.create_jobs(
        user,
        [
            job_spec(
                name="nightly",
                notify=[
                    *notify(receiver, on=["failed"]),
                    {"webhook": slack_url, "format": "slack", "on": ["failed"]},
                ],
            )
        ],
    )
    await fail_then_retry(service, db, user, job, "failed")
    roles.start("sender", AlertSender(db, FAST).run)
    (got,) = await assert_eventually(lambda: now(receiver.delivered("/hook")), what="the json delivery")
    assert got.headers["x-cronfleet-signature"] == alerts.sign(secret, got.body)
    assert got.headers["content-type"] == "application/json"
    event = got.json
    (alert,) = await alerts_of(service, user, job)
    assert event["id"] == got.alert_id == str(alert.id)
    assert (event["kind"], event["job_name"], event["job_id"]) == ("failed", "nightly", str(job.id))
    assert event["status"] == "failed" and event["exit_code"] == 1
    (slack,) = await assert_eventually(lambda: now(receiver.delivered("/services/T0/B0/x")))
    assert slack.json["text"].startswith("Job nightly failed (attempt 1; exit code 1")

    async def recorded() -> bool:
        (a,) = await alerts_of(service, user, job)
        return all(d.status == "delivered" and d.attempts == 1 for d in a.deliveries)

    await assert_eventually(recorded, what="both deliveries recorded delivered")


async def test_a_receiver_that_answers_500_twice_gets_one_successful_delivery(
    db: Database, service: JobsService, user: User, receiver: Receiver, roles: Roles
) -> None:
    receiver.answer(500, 503)
    (job,) = await service.create_jobs(user, [job_spec(notify=notify(receiver))])
    await fail_then_retry(service, db, user, job, "failed")
    roles.start("sender", AlertSender(db, FAST).run)

    async def delivered() -> Any:
        (a,) = await alerts_of(service, user, job)
        return a.deliveries[0] if a.deliveries[0].status == "delivered" else None

    delivery = await assert_eventually(delivered, what="delivered after two failures")
    assert delivery.attempts == 3 and delivery.last_status_code == 200
    tries = receiver.all("/hook")
    assert [r.answered for r in tries] == [500, 503, 200]
    assert len(receiver.delivered()) == 1
    assert len({r.body for r in tries}) == 1, "every try sends the same bytes"
    assert [r.headers["x-cronfleet-delivery-attempt"] for r in tries] == ["1", "2", "3"]


async def test_a_receiver_always_failing_costs_a_bounded_number_of_tries(
    db: Database, service: JobsService, user: User, receiver: Receiver, roles: Roles
) -> None:
    receiver.answer(*[500] * 10)
    (job,) = await service.create_jobs(user, [job_spec(notify=notify(receiver))])
    await fail_then_retry(service, db, user, job, "failed")
    roles.start("sender", AlertSender(db, dataclasses.replace(FAST, alert_max_attempts=4)).run)

    async def given_up() -> Any:
        (a,) = await alerts_of(service, user, job)
        return a.deliveries[0] if a.deliveries[0].status == "failed" else None

    delivery = await assert_eventually(given_up, what="given up")
    assert (delivery.attempts, delivery.last_error) == (4, "HTTP 500")
    assert len(receiver.all()) == 4


async def test_a_hanging_receiver_holds_up_neither_other_deliveries_nor_other_receivers(
    db: Database, service: JobsService, user: User, receiver: Receiver, roles: Roles
) -> None:
    receiver.answer(*["hang"] * 20)
    hanging = await service.create_jobs(
        user, [job_spec(name=f"slow{i}", notify=notify(receiver, "/slow")) for i in range(6)]
    )
    for job in hanging:
        await fail_then_retry(service, db, user, job, "failed")
    sender = AlertSender(db, dataclasses.replace(FAST, alert_timeout_seconds=30.0))
    roles.start("sender", sender.run)
    cap = sender.per_receiver
    await assert_eventually(
        lambda: now(len(receiver.all("/slow")) == cap), what="the receiver's share of tries"
    )
    with webhook_receiver() as other:
        (fine,) = await service.create_jobs(user, [job_spec(name="fine", notify=notify(other))])
        await fail_then_retry(service, db, user, fine, "failed")
        await assert_eventually(lambda: now(other.delivered()), what="another receiver served meanwhile")
    assert len(receiver.all("/slow")) == cap and not receiver.delivered(), "still hanging, and no more tried"


async def test_a_destination_the_policy_refuses_is_not_called_even_by_redirect(
    db: Database, service: JobsService, user: User, receiver: Receiver, roles: Roles
) -> None:
    receiver.redirect_to = "http://169.254.169.254/latest/meta-data/"
    (job,) = await service.create_jobs(user, [job_spec(notify=notify(receiver))])
    await fail_then_retry(service, db, user, job, "failed")
    link_local = OutboundPolicy(deny=(ipaddress.ip_network("169.254.0.0/16"),))
    roles.start("sender", AlertSender(db, FAST, policy=link_local).run)

    async def refused() -> Any:
        (a,) = await alerts_of(service, user, job)
        return a.deliveries[0] if a.deliveries[0].status == "failed" else None

    delivery = await assert_eventually(refused, what="refused")
    assert "blocked_destination: 169.254.169.254" in (delivery.last_error or "")
    assert delivery.attempts == 1 and len(receiver.all()) == 1, "refused at once, never retried"

    receiver.redirect_to = None
    await roles.stop("sender")
    (other,) = await service.create_jobs(user, [job_spec(name="direct", notify=notify(receiver))])
    await fail_then_retry(service, db, user, other, "failed")
    roles.start("strict", AlertSender(db, dataclasses.replace(FAST, http_allow_internal=False)).run)

    async def refused_loopback() -> Any:
        (a,) = await alerts_of(service, user, other)
        return a.deliveries[0] if a.deliveries[0].status == "failed" else None

    delivery = await assert_eventually(refused_loopback, what="loopback refused by default")
    assert "blocked_destination: 127.0.0.1" in (delivery.last_error or "")
    assert len(receiver.all()) == 1


async def test_a_sender_stopped_mid_delivery_leaves_it_to_the_next(
    db: Database, service: JobsService, user: User, receiver: Receiver, roles: Roles
) -> None:
    receiver.answer("hang")
    (job,) = await service.create_jobs(user, [job_spec(notify=notify(receiver))])
    await fail_then_retry(service, db, user, job, "failed")
    slow = dataclasses.replace(FAST, alert_timeout_seconds=30.0)  # the try outlives the sender
    first = AlertSender(db, slow)
    roles.start("first", first.run)
    (hung,) = await assert_eventually(lambda: now(receiver.all()), what="the first try")
    await roles.stop("first")  # mid-request: nothing recorded but the hold
    (a,) = await alerts_of(service, user, job)
    assert (a.deliveries[0].status, a.deliveries[0].attempts) == ("pending", 1)
    held = await db.fetch_all("take_deliveries", {"hold_seconds": 5, "limit": 10})
    assert held == [], "held: no other sender takes it before the hold runs out"
    await sql(db, "UPDATE deliveries SET next_attempt_at = now()")  # as if the first's hold ran out
    roles.start("second", AlertSender(db, FAST).run)
    (got,) = await assert_eventually(lambda: now(receiver.delivered()), what="delivered by the next sender")
    assert got.alert_id == hung.alert_id and got.body == hung.body
    await assert_eventually(lambda: now(len(receiver.all()) == 2))

    async def recorded() -> Alert | None:
        # The receiver has answered; the sender records it a moment later.
        (a,) = await alerts_of(service, user, job)
        return a if a.deliveries[0].status == "delivered" else None

    a = await assert_eventually(recorded, what="the delivery recorded delivered")
    assert a.deliveries[0].attempts == 2
    assert json.loads(got.body)["id"] == str(a.id)
