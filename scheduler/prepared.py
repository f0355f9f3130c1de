"""Each job version prepared once for dispatch, not once per fire: its
stored spec decoded, its secrets opened, the message workers get encoded.

Workers get what a run needs (RUN_FIELDS), not the job's name or timing;
jobs that differ only in those share one prepared entry, found by their
stored content before anything is decoded (one-off jobs, each a version
of its own, made the decoding a fifth of a scheduler's time), and workers,
which key their own decoding on the message's bytes, decode it once too."""

from __future__ import annotations

import collections
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import structlog

from cronfleet import sealing
from cronfleet.codec import proto, rows
from cronfleet.db import Row
from cronfleet.models import JobSpec
from cronfleet.sealing import SecretKey
from cronfleet.v1 import jobs_pb2
from scheduler.dispatch import QueuedRun, needs_fresh_container

log = structlog.get_logger()


# What a worker needs of a job to run it; the rest of the spec (its name,
# its timing, its retry and alert policies) is the scheduler's business.
RUN_FIELDS = ("command", "steps", "image", "env", "timeout_seconds", "resources", "http", "container")
# The stored columns among them (the others are in the ``spec`` document).
RUN_COLUMNS = ("timeout_seconds",)


@dataclass(frozen=True)
class PreparedJob:
    """What the claim needs of one job version: its misfire policy, whether
    it fires once, the message workers get (secrets opened: it travels over
    mutual TLS only), and why its runs cannot be handed over, if they cannot."""

    misfire_policy: str
    run_once: bool
    message: jobs_pb2.JobSpec
    refused: str = ""
    fresh_container: bool = field(init=False)  # dispatch.needs_fresh_container, asked once

    def __post_init__(self) -> None:
        object.__setattr__(self, "fresh_container", needs_fresh_container(self.message))


# In the content cache: this content has a sealed secret, prepared per job.
SEALED = PreparedJob("", False, jobs_pb2.JobSpec())


class JobCache:
    """Each job version prepared once, not once per fire; versions with the
    same stored content (but for name and timing columns) share one entry."""

    def __init__(self, secret_key: SecretKey | None = None, size: int = 10_000) -> None:
        self.secret_key = secret_key
        self.size = size
        self._by_version: collections.OrderedDict[tuple[Any, int], PreparedJob] = collections.OrderedDict()
        self._by_content: collections.OrderedDict[tuple[Any, ...], PreparedJob] = collections.OrderedDict()

    def get(self, job: Row) -> PreparedJob:
        """``job`` is a ``jobs`` row: every column, or select_due_fires's."""
        key = (job["id"], job["version"])
        found = self._by_version.get(key)
        if found is None:
            found = self._by_version[key] = self._by_content_of(job)
            if len(self._by_version) > self.size:
                self._by_version.popitem(last=False)
        return found

    def _by_content_of(self, job: Row) -> PreparedJob:
        # The claim reads the stored document as its text ("spec_text", jsonb's
        # own rendering: equal documents, equal texts), parsed here only for a
        # content not seen; other callers give it parsed ("spec"), keyed by its
        # repr (jsonb's key order: equal documents, equal reprs).
        text = job.get("spec_text")
        key = (text if text is not None else repr(job["spec"]), *(job[c] for c in RUN_COLUMNS))
        found = self._by_content.get(key)
        if found is not None and found is not SEALED:
            return found
        if text is not None:
            job = {**job, "spec": json.loads(text)}
        prepared = self._prepare(job["id"], rows.spec_from_row(job))
        if found is None:
            # A sealed secret opens only for its own job: such content is only
            # marked, and each of its jobs prepared for itself (by version).
            sealed = any(isinstance(v, dict) for v in (job["spec"].get("env") or {}).values())
            self._by_content[key] = SEALED if sealed else prepared
            if len(self._by_content) > self.size:
                self._by_content.popitem(last=False)
        return prepared

    def _prepare(self, job_id: uuid.UUID, spec: JobSpec) -> PreparedJob:
        run = JobSpec(**{name: getattr(spec, name) for name in RUN_FIELDS})
        try:
            opened = sealing.open_env(run, self.secret_key, job_id)
        except sealing.SealingError as exc:
            # Its runs fail with this (the worker runs nothing): say so here too.
            log.error("secret_not_opened", job_id=str(job_id), error=str(exc))
            refused = f"secret_unavailable: {exc}"
            return PreparedJob(spec.misfire_policy, spec.run_once, proto.spec_to_proto(run), refused)
        message = proto.spec_to_proto(opened, reveal_secrets=True)
        return PreparedJob(spec.misfire_policy, spec.run_once, message)


jobs_without_secrets = JobCache()  # for callers that give none (tests, the bench): no secret key


def queued_run(execution: Row, job: Row, prepared: PreparedJob) -> QueuedRun:
    """``execution``'s run of ``job`` (a ``jobs`` row), ``prepared`` (JobCache.get)."""
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
