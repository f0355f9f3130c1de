"""What follows the end of an attempt, decided in the transaction that records
it: another attempt by the job's retry policy, or a dead letter; and the
runs of downstream jobs (``after``).

The scheduler calls :func:`settle` for what workers report; the coordinator
for runs it declares lost. Both write through the same rules:

- an attempt is retried when its failure class (``failed``, ``timed_out``,
  ``lost``, ``oom_killed``) is in the policy's ``on``, its exit code is not in
  ``never_exit_codes``, and the budget allows: ``attempt <= max_retries``;
- a lost attempt (its worker died, froze or was cut off) is the machine's
  failure, not the job's: with delivery ``at_least_once`` (the default) it
  runs again at once, whatever the retry policy, up to the cluster's
  ``lost_reruns`` times per fire, and does not use up the job's retries
  (``max_retries`` counts the other failures); ``at_most_once`` never runs a
  lost one again, since it may have run;
- the next attempt waits ``backoff * multiplier^(attempt-1)``, capped, moved
  by up to ``jitter`` either way, and carries the attempt's checkpoint;
- an attempt that fails for good becomes a dead letter (never for a deleted job);
- a run that succeeds, or fails for good, fires the active jobs whose
  ``after`` names its job with that outcome (or "always"), trigger "upstream";
- what the owner asked to hear of (failed, timed out, dead, recovered)
  becomes an alert to send (cronfleet.alerts).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cronfleet import alerts
from cronfleet.codec import rows
from cronfleet.db import Row, Session
from cronfleet.models import JobSpec, RetryPolicy
from cronfleet.records import Execution, Succeeded

_random = random.Random()
LOST_RERUNS = 3  # the default of CRONFLEET_LOST_RERUNS


@dataclass(frozen=True)
class Decision:
    """Retry at ``retry_at``, or (``retry_at`` None) a dead letter for ``reason``."""

    execution: Execution
    retry_at: datetime | None = None
    reason: str = ""


def retry_delay(policy: RetryPolicy, attempt: int, rand: random.Random = _random) -> float:
    """Seconds before the attempt after ``attempt`` (1-based) starts."""
    base = min(policy.max_backoff_seconds, policy.backoff_seconds * policy.multiplier ** (attempt - 1))
    spread = base * policy.jitter
    return max(0.0, base + rand.uniform(-spread, spread))


def decide(
    execution: Execution,
    spec: JobSpec,
    default_backoff: float,
    now: datetime,
    lost_so_far: int = 0,
    lost_reruns: int = LOST_RERUNS,
) -> Decision | None:
    """What follows ``execution``; None when it did not fail. ``lost_so_far``
    counts the fire's attempts that were lost, this one included."""
    klass = execution.failure_class
    if klass is None:
        return None
    if klass == "lost":
        if spec.delivery == "at_most_once":
            return Decision(execution, reason="lost; delivery at_most_once: not run again")
        if lost_so_far > lost_reruns:
            return Decision(execution, reason=f"lost {lost_so_far} times (the cluster re-runs {lost_reruns})")
        # Elsewhere, at once (a machine died, not the job), but never before
        # its time: a run armed ahead (claimed seconds early) and lost with its
        # worker had not started yet.
        return Decision(execution, retry_at=max(now, execution.run_at))
    policy = spec.retry or RetryPolicy(backoff_seconds=default_backoff)
    if klass not in policy.on:
        return Decision(execution, reason=f"{_what(execution)}; the retry policy does not retry {klass}")
    if execution.exit_code is not None and execution.exit_code in policy.never_exit_codes:
        return Decision(
            execution, reason=f"{_what(execution)}; never retried for exit code {execution.exit_code}"
        )
    tries = execution.attempt - lost_so_far  # lost attempts use none of the budget
    if tries > spec.max_retries:
        tried = "no retries" if spec.max_retries == 0 else f"retries spent ({tries} attempts)"
        return Decision(execution, reason=f"{_what(execution)}; {tried}")
    delay = retry_delay(policy, tries)
    return Decision(execution, retry_at=now + timedelta(seconds=delay))


def _what(e: Execution) -> str:
    if e.error:
        return f"{e.status}: {e.error}"
    if e.exit_code is not None:
        return f"{e.status}: exit code {e.exit_code}"
    return e.status


async def settle(
    tx: Session, ended: list[Row], default_backoff: float, now: datetime, lost_reruns: int = LOST_RERUNS
) -> list[Decision]:
    """Retry or dead-letter each attempt of ``ended`` (executions rows) that
    failed, fire what runs after the ones that ended for good, and record
    the alerts they call for. A succeeded one's row may hold its keys and
    status alone (id, job_id, scheduled_at, status)."""
    ok = "succeeded"
    # The finish's write says whether anything follows or hears (else: look).
    succeeded = [
        Succeeded(
            r["id"],
            r["job_id"],
            r["scheduled_at"],
            has_downstream=r.get("has_downstream", True),
            tells_recovery=r.get("tells_recovery", True),
        )
        for r in ended
        if r["status"] == ok
    ]
    executions = [rows.execution_from_row(r) for r in ended if r["status"] != ok]
    decisions = await _retry_or_bury(tx, executions, default_backoff, now, lost_reruns)
    final_failures = [d.execution for d in decisions if d.retry_at is None]
    await _fire_downstream(tx, succeeded, final_failures)
    dead = {d.execution.id: d.reason for d in decisions if d.retry_at is None}
    await alerts.record(tx, await alerts.of_outcomes(tx, executions, dead, succeeded))
    return decisions


async def _fire_downstream(tx: Session, succeeded: list[Succeeded], failed: list[Execution]) -> None:
    ended = [(e.id, e.job_id, e.scheduled_at, "success") for e in succeeded if e.has_downstream]
    ended += [(e.id, e.job_id, e.scheduled_at, "failure") for e in failed]
    if not ended:
        return
    fired = await tx.fetch_all(
        "fire_downstream",
        {
            "execution_ids": [e[0] for e in ended],
            "upstream_ids": [e[1] for e in ended],
            "scheduled": [e[2] for e in ended],
            "outcomes": [e[3] for e in ended],
        },
    )
    for shard in {r["shard_id"] for r in fired}:
        await tx.execute("notify_due", {"shard_id": shard})


async def _retry_or_bury(
    tx: Session, executions: list[Execution], default_backoff: float, now: datetime, lost_reruns: int
) -> list[Decision]:
    failed = [e for e in executions if e.failure_class is not None]
    if not failed:
        return []
    jobs = {j["id"]: j for j in await tx.fetch_all("jobs_by_id", {"ids": list({e.job_id for e in failed})})}
    lost = await _lost_attempts(tx, failed)
    decisions = []
    for e in failed:
        job = jobs.get(e.job_id)
        if job is None or job["status"] == "deleted":
            continue  # nothing follows a deleted job's runs
        lost_so_far = lost.get((e.job_id, e.scheduled_at), 0)
        decision = decide(e, rows.spec_from_row(job), default_backoff, now, lost_so_far, lost_reruns)
        if decision is not None:
            decisions.append(decision)
    retries = [d for d in decisions if d.retry_at is not None]
    dead = [d for d in decisions if d.retry_at is None]
    if retries:
        inserted = await tx.fetch_all(
            "insert_retries",
            {"ids": [d.execution.id for d in retries], "run_ats": [d.retry_at for d in retries]},
        )
        for shard in {r["shard_id"] for r in inserted}:
            await tx.execute("notify_due", {"shard_id": shard})
    if dead:
        await tx.execute(
            "insert_dead_letters",
            {"ids": [d.execution.id for d in dead], "reasons": [d.reason for d in dead]},
        )
    return decisions


async def _lost_attempts(tx: Session, failed: list[Execution]) -> dict[tuple[Any, datetime], int]:
    """How many attempts of each fire were lost, the ones ending now included."""
    fires = {(e.job_id, e.scheduled_at) for e in failed if e.attempt > 1 or e.status == "lost"}
    if not fires:
        return {}
    found = await tx.fetch_all(
        "lost_attempts_of_fires",
        {"job_ids": [j for j, _ in fires], "scheduled": [at for _, at in fires]},
    )
    return {(r["job_id"], r["scheduled_at"]): r["lost"] for r in found}
