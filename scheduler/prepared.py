"""Each job version prepared once for dispatch, not once per fire: its
stored spec decoded, its secrets opened, the message workers get encoded."""

from __future__ import annotations

import collections
import uuid
from dataclasses import dataclass
from typing import Any

import structlog

from cronfleet import sealing
from cronfleet.codec import proto, rows
from cronfleet.db import Row
from cronfleet.models import JobSpec
from cronfleet.sealing import SecretKey
from cronfleet.v1 import jobs_pb2
from scheduler.dispatch import QueuedRun

log = structlog.get_logger()


@dataclass(frozen=True)
class PreparedJob:
    """One version of a job: its spec as stored (secrets sealed), the message
    workers get (secrets opened: it travels over mutual TLS only), and why
    its runs cannot be handed over, if they cannot."""

    spec: JobSpec
    message: jobs_pb2.JobSpec
    refused: str = ""


class JobCache:
    """Each job version prepared once, not once per fire."""

    def __init__(self, secret_key: SecretKey | None = None, size: int = 10_000) -> None:
        self.secret_key = secret_key
        self.size = size
        self._cache: collections.OrderedDict[tuple[Any, int], PreparedJob] = collections.OrderedDict()

    def get(self, job: Row) -> PreparedJob:
        """``job`` is a ``jobs`` row (every column)."""
        key = (job["id"], job["version"])
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._prepare(job["id"], rows.spec_from_row(job))
            if len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return found

    def _prepare(self, job_id: uuid.UUID, spec: JobSpec) -> PreparedJob:
        try:
            opened = sealing.open_env(spec, self.secret_key, job_id)
        except sealing.SealingError as exc:
            # Its runs fail with this (the worker runs nothing): say so here too.
            log.error("secret_not_opened", job_id=str(job_id), error=str(exc))
            return PreparedJob(spec, proto.spec_to_proto(spec), f"secret_unavailable: {exc}")
        return PreparedJob(spec, proto.spec_to_proto(opened, reveal_secrets=True))


jobs_without_secrets = JobCache()  # for callers that give none (tests, the bench): no secret key


def queued_run(execution: Row, job: Row, jobs: JobCache) -> QueuedRun:
    prepared = jobs.get(job)
    return QueuedRun(
        sort_key=(-execution["priority"], execution["run_at"], execution["id"]),
        execution_id=execution["id"],
        job_id=execution["job_id"],
        owner_id=job["owner_id"],
        scheduled_at=execution["scheduled_at"],
        attempt=execution["attempt"],
        fire_at=execution["run_at"],
        job=prepared.message,
        checkpoint=bytes(execution.get("checkpoint") or b""),
        shard_id=execution["shard_id"],
        refused=prepared.refused,
    )
