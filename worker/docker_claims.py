"""Whose run each Docker container holds, and what a restarted worker does
with the containers its previous life left: a run that finished while it was
down is reported with its exit code and output, a live one is killed and
reported lost, a warm container that held no run is removed.

Pooled containers are created before any run is known, so whose run one
holds lives beside the worker (a claim file per container, or per run in a
per_job container), not on the container.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker.errors
import structlog

from worker.runtime import RunOutcome, RunSpec, checkpoint_from_report, cut_checkpoint
from worker.watchdog import container_run, take_mark

if TYPE_CHECKING:
    from worker.docker_runtime import DockerRuntime

log = structlog.get_logger()
LABEL = "cronfleet"
# $CRONFLEET_CHECKPOINT inside the container (its /tmp is a tmpfs).
CHECKPOINT_PATH = "/tmp/cronfleet.checkpoint"


@dataclass
class Recovered:
    """A container found at start-up, left by this worker before it restarted."""

    execution_id: int
    attempt: int
    job_id: str
    owner_id: str
    outcome: RunOutcome
    spool_path: Path


@dataclass(frozen=True)
class Claim:
    """Whose run a container holds."""

    execution_id: int
    attempt: int
    job_id: str
    owner_id: str


class Claims:
    """One small file per container holding a run, so a restarted worker knows."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def record(self, container_id: str, spec: RunSpec) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        claim = Claim(spec.execution_id, spec.attempt, spec.job_id, spec.owner_id)
        (self.folder / container_id).write_text(json.dumps(dataclasses.asdict(claim)))

    def read(self, key: str) -> Claim | None:
        try:
            return Claim(**json.loads((self.folder / key).read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return None

    def of(self, container_id: str) -> dict[str, Claim]:
        """Every claim on a container: its run's (key: the container id), or
        the runs in a per_job container (key: ``CONTAINER.NONCE``)."""
        found: dict[str, Claim] = {}
        for path in self.folder.glob(f"{container_id}*") if self.folder.is_dir() else []:
            if path.name == container_id or path.name.startswith(f"{container_id}."):
                claim = self.read(path.name)
                if claim is not None:
                    found[path.name] = claim
        return found

    def forget(self, container_id: str) -> None:
        (self.folder / container_id).unlink(missing_ok=True)


def outcome_for(code: int, oom: bool, killed_for: str) -> RunOutcome:
    if oom:
        return RunOutcome("failed", code, "oom_killed")
    if killed_for == "timed_out":
        return RunOutcome("timed_out", code, "timed_out")
    if killed_for:
        return RunOutcome(killed_for, code, f"stopped: {killed_for}")
    return RunOutcome("succeeded" if code == 0 else "failed", code)


def recover_containers(runtime: DockerRuntime) -> list[Recovered]:
    """What a previous life of this worker left: runs it held are reported
    (finished) or killed (lost); idle pooled containers are removed."""
    found: list[Recovered] = []
    mine = [f"{LABEL}.worker_id={runtime.worker_id}", f"{LABEL}.cluster={runtime.settings.etcd_prefix}"]
    for c in runtime.client.containers.list(all=True, filters={"label": mine}, ignore_removed=True):
        claims = runtime.claims.of(c.id)
        try:
            if not claims:
                c.remove(force=True)  # warm, never handed a run
            elif c.labels.get(LABEL) == "resident":
                found += _recover_resident(runtime, c, list(claims.values()))
            else:
                found.append(_recover_one(runtime, c, claims[c.id]))
        except (docker.errors.APIError, KeyError) as exc:  # e.g. removed meanwhile
            log.warning("container_recovery_failed", container=c.id, error=str(exc))
        for key in claims:
            runtime.claims.forget(key)
    if found:
        log.warning("containers_recovered", worker_id=runtime.worker_id, count=len(found))
    return found


def _recover_resident(runtime: DockerRuntime, c: Any, claims: list[Claim]) -> list[Recovered]:
    """A per_job container: its runs' results went with the worker that
    waited on them, so each run in it is lost (and retried by its policy)."""
    with contextlib.suppress(docker.errors.APIError):
        c.remove(force=True)
    spool_dir = Path(runtime.settings.state_dir).absolute() / "recovered"
    spool_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for claim in claims:
        spool = spool_dir / f"{c.id}.{claim.execution_id}.log"
        spool.write_bytes(b"")
        outcome = RunOutcome("lost", None, "worker restarted while the run was live")
        out.append(Recovered(claim.execution_id, claim.attempt, claim.job_id, claim.owner_id, outcome, spool))
    return out


def _recover_one(runtime: DockerRuntime, c: Any, claim: Claim) -> Recovered:
    spool = Path(runtime.settings.state_dir).absolute() / "recovered" / f"{c.id}.log"
    spool.parent.mkdir(parents=True, exist_ok=True)
    checkpoint: bytes | None = None
    fenced = take_mark(runtime.fence_dir, container_run(c.id))
    if fenced:  # the previous life's watchdog killed it when that worker died
        outcome = RunOutcome("lost", None, f"killed by the worker's watchdog: {fenced}")
    elif c.status == "exited":
        code = int(c.attrs["State"]["ExitCode"])
        outcome = outcome_for(code, bool(c.attrs["State"].get("OOMKilled")), "")
        with contextlib.suppress(docker.errors.APIError):
            checkpoint = checkpoint_from_report(c.logs(stdout=False, stderr=True).decode(errors="replace"))
    else:
        with contextlib.suppress(docker.errors.APIError):  # its checkpoint, before it goes
            found = c.exec_run(["cat", CHECKPOINT_PATH], user=runtime.settings.docker_user)
            checkpoint = bytes(found.output) if found.exit_code == 0 and found.output else None
        with contextlib.suppress(docker.errors.APIError):
            c.kill()
        outcome = RunOutcome("lost", None, "worker restarted while the run was live")
    if checkpoint is not None:
        outcome.checkpoint, outcome.checkpoint_truncated = cut_checkpoint(checkpoint)
    with contextlib.suppress(docker.errors.APIError):
        spool.write_bytes(c.logs(stdout=True, stderr=False))
    with contextlib.suppress(docker.errors.APIError):
        c.remove(force=True)
    return Recovered(
        execution_id=claim.execution_id,
        attempt=claim.attempt,
        job_id=claim.job_id,
        owner_id=claim.owner_id,
        outcome=outcome,
        spool_path=spool,
    )
