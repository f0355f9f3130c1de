"""A stored job, :class:`Job`: the user's spec plus what the server keeps
about it, and the latest runs a job list shows with it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from cronfleet import preview
from cronfleet.models.spec import JobSpec
from cronfleet.schedule import Timing


@dataclass(frozen=True)
class RunBrief:
    """One of a job's latest runs, as a job list shows it (``recent=N``)."""

    id: int  # the execution's
    status: str
    scheduled_at: datetime
    finished_at: datetime | None = None
    exit_code: int | None = None


@dataclass(frozen=True)
class Job:
    """A stored job: the user's spec plus what the server keeps about it."""

    id: uuid.UUID
    owner_id: uuid.UUID
    spec: JobSpec
    status: str
    shard_id: int
    version: int
    created_at: datetime
    updated_at: datetime
    next_run_at: datetime | None = None
    paused_at: datetime | None = None
    # Said when the job is created or changed (cronfleet.preview), not kept.
    warnings: tuple[str, ...] = ()
    # Filled by a job list that asks for them, newest first; not kept.
    recent_runs: tuple[RunBrief, ...] = ()

    @property
    def schedule_description(self) -> str:
        return preview.describe_schedule(self.spec.schedule)

    @property
    def timing(self) -> Timing:
        return self.spec.timing(anchor=self.created_at)
