"""A job's ``after``: every upstream one of the caller's jobs, no chain
that leads back to the job, and the links stored that fire it when an
upstream run ends."""

from __future__ import annotations

import uuid

from cronfleet.db import Session
from cronfleet.errors import InvalidSpec
from cronfleet.models import Job, JobSpec
from cronfleet.records import User
from gateway.service.base import ServiceBase


class Upstreams(ServiceBase):
    async def _check_upstreams(
        self, tx: Session, user: User, specs: list[JobSpec], changing: Job | None = None
    ) -> None:
        """Every ``after`` names one of the caller's jobs, and no chain loops."""
        named = {uuid.UUID(u.job_id) for spec in specs for u in spec.after}
        if not named:
            return
        found = {
            r["id"]: r for r in await tx.fetch_all("jobs_of_owner", {"owner_id": user.id, "ids": list(named)})
        }
        for spec in specs:
            for i, upstream in enumerate(spec.after):
                row = found.get(uuid.UUID(upstream.job_id))
                if row is None or row["status"] == "deleted":
                    raise InvalidSpec(f"no job {upstream.job_id} of yours", field=f"after[{i}].job_id")
        if changing is not None:
            await self._refuse_cycles(tx, user, changing, specs[0])

    async def _refuse_cycles(self, tx: Session, user: User, job: Job, spec: JobSpec) -> None:
        """A job may not run after itself, however far up the chain."""
        edges: dict[uuid.UUID, set[uuid.UUID]] = {}
        for r in await tx.fetch_all("job_upstreams_of_owner", {"owner_id": user.id}):
            if r["job_id"] != job.id:
                edges.setdefault(r["job_id"], set()).add(r["upstream_id"])
        edges[job.id] = {uuid.UUID(u.job_id) for u in spec.after}
        path = _path_back_to(job.id, edges)
        if path:
            names = {
                r["id"]: r["name"]
                for r in await tx.fetch_all("jobs_of_owner", {"owner_id": user.id, "ids": path})
            }
            loop = " -> ".join(names.get(j, str(j)) for j in [job.id, *path])
            raise InvalidSpec(f"would make a cycle: {loop}", field="after")

    @staticmethod
    async def _link_upstreams(tx: Session, job: Job) -> None:
        await tx.execute("unlink_upstreams", {"job_id": job.id})
        if job.spec.after:
            await tx.execute(
                "link_upstreams",
                {
                    "job_id": job.id,
                    "upstream_ids": [u.job_id for u in job.spec.after],
                    "outcomes": [u.on for u in job.spec.after],
                },
            )


def waits_for_upstream(spec: JobSpec) -> bool:
    """A job with ``after`` and no time of its own fires only when its upstream ends."""
    return bool(spec.after) and spec.schedule is None and spec.run_at is None


def _path_back_to(start: uuid.UUID, upstreams: dict[uuid.UUID, set[uuid.UUID]]) -> list[uuid.UUID]:
    """The chain of upstreams from ``start`` that leads back to it, or []."""
    stack: list[tuple[uuid.UUID, list[uuid.UUID]]] = [(u, [u]) for u in upstreams.get(start, ())]
    seen: set[uuid.UUID] = set()
    while stack:
        node, path = stack.pop()
        if node == start:
            return path
        if node in seen:
            continue
        seen.add(node)
        stack.extend((u, [*path, u]) for u in upstreams.get(node, ()))
    return []
