"""What follows the end of an attempt, decided in the transaction that records
it: another attempt by the job's retry policy, or a dead letter; and the
runs of downstream jobs (``after``).

The scheduler calls :func:`settle` for what workers report; the coordinator
for runs it declares lost. Both write through the same rules:

- an attempt is retried when its failure class (``failed``, ``timed_out``,
  ``lost``, ``oom_killed``) is in the policy's ``on``, its exit code is not in
  ``never_exit_codes``, and the budget allows: ``attempt <= max_retries``;
- delivery ``at_least_once`` (the default) runs a lost attempt again even
  with no retries configured (once); ``at_most_once`` never runs a lost one
  again, since it may have run;
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

from cronfleet import alerts
from cronfleet.codec import rows
from cronfleet.db import Row, Session
from cronfleet.models import JobSpec, RetryPolicy
from cronfleet.records import Execution

_random = random.Random()


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


def decide(execution: Execution, spec: JobSpec, default_backoff: float, now: datetime) -> Decision | None:
    """What follows ``execution``; None when it did not fail."""
    klass = execution.failure_class
    if klass is None:
        return None
    policy = spec.retry or RetryPolicy(backoff_seconds=default_backoff)
    budget = spec.max_retries
    if klass == "lost":
        if spec.delivery == "at_most_once":
            return Decision(execution, reason="lost; delivery at_most_once: not run again")
        budget = max(budget, 1)  # at least once: a run lost with its worker runs again
    if klass not in policy.on:
        return Decision(execution, reason=f"{_what(execution)}; the retry policy does not retry {klass}")
    if execution.exit_code is not None and execution.exit_code in policy.never_exit_codes:
        return Decision(
            execution, reason=f"{_what(execution)}; never retried for exit code {execution.exit_code}"
        )
    if execution.attempt > budget:
        tried = "no retries" if budget == 0 else f"retries spent ({execution.attempt} attempts)"
        return Decision(execution, reason=f"{_what(execution)}; {tried}")
    delay = retry_delay(policy, execution.attempt)
    return Decision(execution, retry_at=now + timedelta(seconds=delay))


def _what(e: Execution) -> str:
    if e.error:
        return f"{e.status}: {e.error}"
    if e.exit_code is not None:
        return f"{e.status}: exit code {e.exit_code}"
    return e.status


async def settle(tx: Session, ended: list[Row], default_backoff: float, now: datetime) -> list[Decision]:
    """Retry or dead-letter each attempt of ``ended`` (executions rows) that
    failed, fire what runs after the ones that ended for good, and record
    the alerts they call for."""
    executions = [rows.execution_from_row(r) for r in ended]
    decisions = await _retry_or_bury(tx, executions, default_backoff, now)
    final_failures = [d.execution for d in decisions if d.retry_at is None]
    await _fire_downstream(tx, [e for e in executions if e.status == "succeeded"], final_failures)
    dead = {d.execution.id: d.reason for d in decisions if d.retry_at is None}
    await alerts.record(tx, await alerts.of_outcomes(tx, executions, dead))
    return decisions


async def _fire_downstream(tx: Session, succeeded: list[Execution], failed: list[Execution]) -> None:
    ended = [(e, "success") for e in succeeded] + [(e, "failure") for e in failed]
    if not ended:
        return
    fired = await tx.fetch_all(
        "fire_downstream",
        {
            "execution_ids": [e.id for e, _ in ended],
            "upstream_ids": [e.job_id for e, _ in ended],
            "scheduled": [e.scheduled_at for e, _ in ended],
            "outcomes": [outcome for _, outcome in ended],
        },
    )
    for shard in {r["shard_id"] for r in fired}:
        await tx.execute("notify_due", {"shard_id": shard})


async def _retry_or_bury(
    tx: Session, executions: list[Execution], default_backoff: float, now: datetime
) -> list[Decision]:
    failed = [e for e in executions if e.failure_class is not None]
    if not failed:
        return []
    jobs = {j["id"]: j for j in await tx.fetch_all("jobs_by_id", {"ids": list({e.job_id for e in failed})})}
    decisions = []
    for e in failed:
        job = jobs.get(e.job_id)
        if job is None or job["status"] == "deleted":
            continue  # nothing follows a deleted job's runs
        decision = decide(e, rows.spec_from_row(job), default_backoff, now)
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
