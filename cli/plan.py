"""Jobs as files: what the files say against what the server has, as a plan
(create, update with the fields that differ, unchanged, delete).

A file is the YAML form of the API: ``jobs: [...]``, each a job as in
API.md. Both sides are normalised through the server's own codec
(``spec_from_json`` then ``spec_to_json``), so a default written out or left
out is no change. ``after`` may name an upstream by ``job`` (its name, in
the files or on the server) as well as by ``job_id``; a job the files create
is given a placeholder id until it exists, and upstreams come first.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cli.session import BadInput
from cronfleet.codec.jsonapi import spec_from_json, spec_to_json
from cronfleet.errors import CronfleetError
from cronfleet.models import MASK, JobSpec

Reply = dict[str, Any]
SPEC_FIELDS = tuple(f.name for f in dataclasses.fields(JobSpec))
SECRET_SHOWN = {"value": MASK, "secret": True}  # how the API shows a secret env value
_PLACEHOLDERS = uuid.UUID("6f1c0a53-2a3c-4b8e-9d61-0c5be1f0a7d2")


@dataclass(frozen=True)
class FileJob:
    """One job as a file wrote it, and where (for errors)."""

    name: str
    source: str
    body: Reply


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class Change:
    """One line of the plan. ``spec`` is the job to write (create, update),
    its ``after`` ids possibly placeholders for jobs created before it."""

    action: str  # "create" | "update" | "unchanged" | "delete"
    name: str
    job_id: str | None = None
    fields: tuple[FieldChange, ...] = ()
    spec: Reply | None = None

    def as_json(self) -> Reply:
        out: Reply = {"action": self.action, "name": self.name, "id": self.job_id}
        if self.action == "update":
            out["fields"] = {f.field: {"before": f.before, "after": f.after} for f in self.fields}
        return out


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]

    def of(self, action: str) -> list[Change]:
        return [c for c in self.changes if c.action == action]

    @property
    def writes(self) -> bool:
        return any(c.action != "unchanged" for c in self.changes)

    def summary(self, done: bool = False) -> str:
        """Counts as "1 to create, 2 unchanged" (or, ``done``, "1 created, 2 unchanged")."""
        words = {"create": "created", "update": "updated", "delete": "deleted"}
        counts = []
        for action in ("create", "update", "unchanged", "delete"):
            n = len(self.of(action))
            if n or action in ("create", "update", "unchanged"):
                word = action if action == "unchanged" else words[action] if done else f"to {action}"
                counts.append(f"{n} {word}")
        return ", ".join(counts)


def placeholder_id(name: str) -> str:
    """The id a job the plan creates goes by until it exists."""
    return str(uuid.uuid5(_PLACEHOLDERS, name))


# ------------------------------------------------------------------ files
def jobs_in_document(data: Any, source: str) -> list[FileJob]:
    """The jobs of one parsed YAML document ``jobs: [...]`` (None: an empty one)."""
    if data is None:
        return []
    if not isinstance(data, dict):
        raise BadInput(f"{source}: must be a mapping with a list of jobs: 'jobs: [...]'")
    for key in data:
        if key != "jobs":
            raise BadInput(f"{source}: {key}: unknown key (a file holds 'jobs: [...]')")
    jobs = data.get("jobs") or []
    if not isinstance(jobs, list):
        raise BadInput(f"{source}: jobs: must be a list")
    found = []
    for i, job in enumerate(jobs):
        where = f"{source} jobs[{i}]"
        if not isinstance(job, dict):
            raise BadInput(f"{where}: must be a job (a mapping of its fields)")
        name = job.get("name")
        if not isinstance(name, str) or not name.strip():
            raise BadInput(f"{where}: name: is required (jobs are matched by name)")
        found.append(FileJob(name, f"{where} ({name})", job))
    return found


def check_unique(jobs: Iterable[FileJob]) -> None:
    seen: dict[str, FileJob] = {}
    for job in jobs:
        if job.name in seen:
            raise BadInput(f"{job.source}: name: {job.name!r} is also {seen[job.name].source}")
        seen[job.name] = job


# ------------------------------------------------------------------- plan
def make_plan(
    files: list[FileJob], current: list[Reply], *, prune: bool = False, update_secrets: bool = False
) -> Plan:
    """What applying ``files`` to the user's ``current`` jobs (not deleted)
    does, in the order to do it: upstreams first, deletes last."""
    check_unique(files)
    by_name: dict[str, list[Reply]] = {}
    for job in current:
        by_name.setdefault(job["name"], []).append(job)
    ids = {f.name: _existing_id(f, by_name) or placeholder_id(f.name) for f in files}
    changes = []
    for f in upstreams_first(files):
        desired = normalise(resolve_after(f, ids, by_name), f.source)
        existing = by_name.get(f.name)
        if not existing:
            changes.append(Change("create", f.name, spec=desired))
            continue
        before = current_spec(existing[0])
        desired = keep_secrets(before, desired, update_secrets)
        fields = diff_specs(before, desired)
        action = "update" if fields else "unchanged"
        changes.append(Change(action, f.name, existing[0]["id"], fields, desired))
    if prune:
        named = {f.name for f in files}
        for name in sorted(by_name.keys() - named):
            changes.extend(Change("delete", name, job["id"]) for job in by_name[name])
    return Plan(tuple(changes))


def _existing_id(f: FileJob, by_name: dict[str, list[Reply]]) -> str | None:
    found = by_name.get(f.name, [])
    if len(found) > 1:
        ids = ", ".join(j["id"] for j in found)
        raise BadInput(f"{f.source}: name: {len(found)} jobs are named {f.name!r} ({ids}); keep one")
    return str(found[0]["id"]) if found else None


def upstreams_first(files: list[FileJob]) -> list[FileJob]:
    """The files' jobs, each after the jobs it names in ``after`` (else in file order)."""
    by_name = {f.name: f for f in files}
    ordered: list[FileJob] = []
    state: dict[str, str] = {}  # "visiting" | "done"

    def visit(f: FileJob, path: list[str]) -> None:
        if state.get(f.name) == "done":
            return
        if state.get(f.name) == "visiting":
            cycle = " -> ".join([*path[path.index(f.name) :], f.name])
            raise BadInput(f"{f.source}: after: a cycle: {cycle}")
        state[f.name] = "visiting"
        for upstream in _named_upstreams(f):
            if upstream in by_name:
                visit(by_name[upstream], [*path, f.name])
        state[f.name] = "done"
        ordered.append(f)

    for f in files:
        visit(f, [])
    return ordered


def _named_upstreams(f: FileJob) -> list[str]:
    after = f.body.get("after")
    if not isinstance(after, list):
        return []
    return [str(e["job"]) for e in after if isinstance(e, dict) and isinstance(e.get("job"), str)]


def resolve_after(f: FileJob, ids: dict[str, str], by_name: dict[str, list[Reply]]) -> Reply:
    """``after: [{job: NAME}]`` as the API's ``after: [{job_id: ID}]``."""
    after = f.body.get("after")
    if not isinstance(after, list):
        return f.body  # absent, or wrong: the codec names it
    resolved = []
    for i, entry in enumerate(after):
        if isinstance(entry, dict) and "job" in entry:
            where = f"{f.source}: after[{i}]"
            if "job_id" in entry:
                raise BadInput(f"{where}: give job (a name) or job_id, not both")
            name = entry["job"]
            if name in ids:
                job_id = ids[name]
            else:
                found = by_name.get(name, [])
                if len(found) != 1:
                    what = "no job" if not found else f"{len(found)} jobs"
                    raise BadInput(f"{where}.job: {what} named {name!r} in the files or on the server")
                job_id = found[0]["id"]
            entry = {"job_id": job_id, **{k: v for k, v in entry.items() if k != "job"}}
        resolved.append(entry)
    return f.body | {"after": resolved}


def normalise(body: Reply, source: str) -> Reply:
    """A job's spec as the server would store it, checked as it would check
    it; secret values as the file gives them (they are what gets sent)."""
    try:
        spec = spec_from_json(body)
        spec.validate()
    except CronfleetError as exc:
        raise BadInput(f"{source}: {exc}") from None
    return spec_to_json(spec, reveal_secrets=True)


def current_spec(job: Reply) -> Reply:
    """The spec of a job as the API sent it, normalised the same way."""
    return spec_to_json(spec_from_json({k: job[k] for k in SPEC_FIELDS if k in job}))


def _is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get("secret") is True


def keep_secrets(before: Reply, after: Reply, update_secrets: bool) -> Reply:
    """``after`` as it is written over ``before``: for each name the server
    holds a secret under, the file's value (whatever form it takes) is sent
    only with ``update_secrets`` (a file cannot know the secret, and applying
    twice must not write), and then as a secret still; else "***", which
    keeps the value stored."""
    held = {k for k, v in (before.get("env") or {}).items() if _is_secret(v)}
    if not held or "env" not in after:
        return after
    env = {}
    for name, value in after["env"].items():
        if name not in held:
            env[name] = value
        elif update_secrets:
            env[name] = {"value": value["value"] if isinstance(value, dict) else value, "secret": True}
        else:
            env[name] = SECRET_SHOWN
    return after | {"env": env}


def diff_specs(before: Reply, after: Reply) -> tuple[FieldChange, ...]:
    """The top-level fields that differ; a secret value is never shown."""
    shown = dict(after)
    if "env" in after:
        shown["env"] = {k: SECRET_SHOWN if _is_secret(v) else v for k, v in after["env"].items()}
    return tuple(
        FieldChange(name, before.get(name), shown.get(name))
        for name in SPEC_FIELDS
        if before.get(name) != after.get(name)
    )
