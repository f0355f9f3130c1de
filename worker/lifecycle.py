"""The life of one run on this worker: arm, wait for the fire time, release
(never early; a process run armed late begins as it arms), watch, upload
the output, report, give the slot back.

A run is reported twice through the outbox: Started (with its lateness) as
it is released, Finished when it ends (or once, Returned, when the worker
stops before its release). Cancelling or fencing a run kills it wherever it
is in that life."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from cronfleet import metrics
from cronfleet.aio import Background, Drain, until
from cronfleet.codec import proto
from cronfleet.errors import CronfleetError
from cronfleet.logstore import LogStore
from cronfleet.v1 import dispatch_pb2
from worker.events import checkpoint_event, finished_event, returned_event, started_event
from worker.live_output import LiveOutput
from worker.outbox import Outbox
from worker.pacing import ArmingGate, ReleaseBatches, ReleaseWindows
from worker.run_folders import keep_now, kept_folder_for, remove_run_dirs_off_the_loop
from worker.runtime import ArmedRun, RunOutcome, RunRejected, RunSpec, Runtime

log = structlog.get_logger()
# A run due sooner than this arms at once; later ones first let any release
# in progress finish (see worker.pacing).
ARM_WITHOUT_DEFERRING = 5.0
# The most a started report waits for the release windows to close; less
# than the schedulers' OVERDUE_AFTER, so a worker on time never looks behind.
REPORT_DEFER_MOST = 0.3
EARLY_CANCEL_KEPT = 60.0  # how long a cancel for a run not (yet) on this worker is kept


@dataclass
class Run:
    """One assignment on this worker, from arrival to report."""

    spec: RunSpec
    fire_at: float  # epoch seconds; never start before
    origin: str  # the scheduler that assigned it
    armed: ArmedRun | None = None
    cancel_reason: str = ""
    cold_start: bool = False
    started_at: float | None = None
    unreported_start: float | None = None  # its start, said a little later (see _released)
    in_window: bool = False  # counted in the release windows until released or dropped
    never_released: bool = False  # stopped before its release: it never ran, and is gone
    reported: bool = False  # its finish was said early (withdrawn before its release)
    kill_asked: bool = False  # cancelled, fenced or stopped (a withdrawal spares a started run)
    task: asyncio.Task[None] | None = None
    # Set when the run is cancelled, so an armed run stops waiting for its time.
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def execution_id(self) -> int:
        return self.spec.execution_id


class Runs:
    """The runs this worker holds, each living through :meth:`_live`."""

    def __init__(
        self,
        runtime: Runtime,
        logs: LogStore,
        outbox: Outbox,
        *,
        http: Runtime,
        spool_root: Path,
        arm_concurrency: int,
        live_log_interval: float,
        give_back: Callable[[str], None],
    ) -> None:
        self.runtime = runtime
        self.http = http  # runs HTTP jobs, whatever the runtime of commands
        self.logs = logs
        self.outbox = outbox
        self.spool_root = spool_root
        self.live = LiveOutput(logs, live_log_interval)
        self.give_back = give_back  # a slot is free again on this scheduler's stream
        self.active: dict[int, Run] = {}
        self._in_background = Background().spawn  # kills, and the drains below
        # Released runs' starts, reported once the instant is past; finished
        # runs' folders, removed in a thread (an rmdir waits on the
        # filesystem's journal: 70 us here at rest, far more while Postgres
        # syncs, a quarter of a short process run's time on the loop).
        self._starts = Drain(self._report_starts, self._in_background, self._past_the_instant)
        self._folders = Drain(remove_run_dirs_off_the_loop, self._in_background)
        self._cancelled_early: dict[int, float] = {}  # cancels of runs not (yet) here
        # A graceful stop has begun: runs arriving now are not taken (nothing
        # would stop them) but returned, as are the runs here that have not
        # started: their schedulers give them to other workers, as the same
        # attempts. Runs that started are killed and reported lost.
        self.stopping = False
        self.arming = ArmingGate(runtime.arm_slots or arm_concurrency)
        self.windows = ReleaseWindows(enabled=runtime.paced)
        self.batches = ReleaseBatches()

    def __len__(self) -> int:
        return len(self.active)

    def count(self, started: bool) -> int:
        """Runs here that have started (and not ended), or that wait to. The
        exporter's thread asks too: walked as a copy (made under the GIL)."""
        return sum(1 for r in list(self.active.values()) if (r.started_at is not None) == started)

    # ------------------------------------------------------------ commands
    def start(self, assignment: dispatch_pb2.Assignment, origin: str) -> bool:  # whether it is kept
        if assignment.execution_id in self.active:
            return False  # a resend: idempotent by execution id
        if self.stopping:
            log.info("run_returned", execution_id=assignment.execution_id, reason="the worker is stopping")
            self.outbox.emit(returned_event(assignment.execution_id, assignment.scheduled_at), prefer=origin)
            metrics.RUNS_FINISHED.inc("returned")
            return False
        # Its folder is named now: one an earlier process run left, if any
        # (worker.run_folders). The HTTP runtime makes its own folder and takes
        # no kept one; a command runtime that writes no files (the no-op one)
        # has none to take.
        http = assignment.job.HasField("http")
        kept = (
            None
            if http or not self.runtime.writes_files
            else kept_folder_for(self.spool_root, assignment.owner_id)
        )
        spec = RunSpec.from_assignment(assignment, self.spool_root, kept)
        run = Run(spec, spec.fire_at or 0.0, origin)
        self.active[run.execution_id] = run
        if self._cancelled_early.pop(run.execution_id, None) is not None:
            run.cancel_reason = "cancelled"  # its cancel overtook it: it never starts
            run.cancelled.set()
        run.task = asyncio.create_task(self._live(run), name=f"run-{run.execution_id}")
        return True

    def cancel(self, execution_ids: list[int]) -> None:
        now = time.monotonic()
        for execution_id in execution_ids:
            run = self.active.get(execution_id)
            if run is None:
                # Not here (yet): a cancel may overtake its assignment on the way.
                self._cancelled_early[execution_id] = now
                continue
            self._in_background(self.kill(run, "cancelled"))
        for execution_id, at in list(self._cancelled_early.items()):
            if now - at > EARLY_CANCEL_KEPT:
                del self._cancelled_early[execution_id]

    def withdraw(self, execution_ids: list[int]) -> None:
        """Drop runs whose job was paused, edited or deleted, unless started:
        one released before the withdrawal arrived started before the change
        was acknowledged (the API waits for this), and goes on."""
        now = time.monotonic()
        for execution_id in execution_ids:
            run = self.active.get(execution_id)
            if run is None:
                self._cancelled_early[execution_id] = now
            elif run.started_at is None:
                # Not killed here: if its release (or beginning, forked running)
                # is under way it goes on; if not, it is dropped (withhold).
                run.cancel_reason = run.cancel_reason or "cancelled"
                run.cancelled.set()

    async def kill(self, run: Run, reason: str) -> None:
        run.cancel_reason = run.cancel_reason or reason
        run.kill_asked = True
        run.cancelled.set()
        if run.armed is not None:
            await run.armed.kill(reason)

    async def kill_all(self, reason: str) -> None:
        # At once, not one after another: each kill is an engine call or
        # two, and a worker stopping with fifty runs must not spend its
        # grace on them in a queue.
        runs = list(self.active.values())
        results = await asyncio.gather(*(self.kill(run, reason) for run in runs), return_exceptions=True)
        for run, result in zip(runs, results, strict=True):
            if isinstance(result, Exception):
                log.warning(
                    "run_kill_failed", execution_id=run.execution_id, reason=reason, error=repr(result)
                )

    async def wait_all(self, timeout: float) -> None:
        tasks = [r.task for r in self.active.values() if r.task]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    async def report_recovered(self) -> None:
        """Report what a previous life of this worker left in the runtime
        (finished while it was down, or killed now as lost)."""
        recover = getattr(self.runtime, "recover", None)
        if recover is None:
            return
        for r in await recover():
            log_url, log_bytes = "", 0
            with contextlib.suppress(CronfleetError, OSError):
                key = self.logs.key_for(r.owner_id, r.job_id, r.execution_id, r.attempt)
                log_url, log_bytes = await self.live.store(key, r.spool_path)
            self.outbox.emit(finished_event(r.execution_id, r.outcome, log_url, log_bytes), prefer="")
            r.spool_path.unlink(missing_ok=True)

    # ------------------------------------------------------------ the life
    async def _live(self, run: Run) -> None:
        # Every line logged for this run (in this task) names it.
        structlog.contextvars.bind_contextvars(
            execution_id=run.execution_id, job_id=run.spec.job_id, attempt=run.spec.attempt
        )
        self._enter_window(run)
        try:
            outcome = await self._arm_and_run(run)
        except RunRejected as exc:
            outcome = RunOutcome("failed", None, str(exc))
        except Exception as exc:  # a runtime failure is the run's failure, not the worker's
            log.exception("run_failed_to_start", execution_id=run.execution_id)
            outcome = RunOutcome("failed", None, f"could not start: {exc}")
        finally:
            self._leave_window(run, released=False)
        if run.started_at is not None:
            metrics.RUN_DURATION.observe(time.time() - run.started_at)
        elif self.stopping and run.cancel_reason == "lost" and run.never_released:
            # Stopped with this worker before it ever started: handed back
            # whole, to be assigned elsewhere as the same attempt.
            self._emit(run, returned_event(run.execution_id))
            self._done(run, RunOutcome("returned", None))
            return
        if not run.reported:
            log_url, log_bytes = await self._upload(run, outcome)
            self._report_finished(run, outcome, log_url, log_bytes)
        self._done(run, outcome)

    async def _arm_and_run(self, run: Run) -> RunOutcome:
        if run.spec.refused:
            raise RunRejected(run.spec.refused)
        run.armed = await self._arm(run)
        if run.armed is None:
            run.never_released = True  # cancelled before it was armed
            return RunOutcome(run.cancel_reason, None, f"stopped: {run.cancel_reason}")
        # From nothing (no warm container of its profile), or, for runtimes that
        # keep nothing warm, armed after its time: a cold start.
        armed_late = time.time() > run.fire_at
        run.cold_start = run.cold_start or (run.armed.cold if run.armed.cold is not None else armed_late)
        if run.armed.started_at is None:
            released_at = await self.batches.release_at(run.fire_at, run.armed, run.cancelled)
        elif run.cancelled.is_set() and run.armed.withhold():
            released_at = None  # stopped while it armed, and kept from beginning
        else:  # started as it armed (worker.launcher: a late process run)
            released_at = run.armed.started_at
        if released_at is None:  # withdrawn or stopped before it began: it never started
            self._leave_window(run, released=False)
            run.never_released = True
            outcome = RunOutcome(run.cancel_reason, None, f"stopped before its time: {run.cancel_reason}")
            if not self.stopping:
                # Said before the clean-up (0.2-0.3 s for Docker), which a pause
                # or delete need not wait for: its release, never to come, was
                # the only way to start it.
                self._report_finished(run, outcome, "", 0)
                run.reported = True
            await run.armed.kill(run.cancel_reason)
            await run.armed.wait()  # gone before its slot and folder are given back
            return outcome
        await self._released(run, released_at, armed_late)
        if run.kill_asked and run.armed.started_at is not None:  # asked while it armed, begun
            self._in_background(run.armed.kill(run.cancel_reason))
        return await self._watch(run, run.armed)

    async def _arm(self, run: Run) -> ArmedRun | None:
        """Prepare the run, the one due soonest first; None if cancelled meanwhile."""
        if run.fire_at - time.time() > ARM_WITHOUT_DEFERRING:
            await self.windows.quiet()
        runtime = self._runtime_for(run)
        # The run's image, pulled if the engine lacks it (and a per_job job's
        # container, made): outside the arming slots, so a pull of minutes
        # holds up no other run's arming.
        prepare = getattr(runtime, "prepare", None)
        if prepare is not None and not run.cancel_reason:
            waited = await until(prepare(run.spec), run.cancelled)
            run.cold_start = bool(waited)  # it waited for the engine: a cold start, whatever it finds
        await self.arming.acquire(run.fire_at)
        try:
            if run.cancel_reason:
                return None  # cancelled while queued: never armed
            return await runtime.arm(run.spec)
        finally:
            self.arming.release()

    def _runtime_for(self, run: Run) -> Runtime:
        return self.http if run.spec.http is not None else self.runtime

    def _writes_files(self, run: Run) -> bool:
        """Whether the run may have a folder and output."""
        return self._runtime_for(run).writes_files

    async def _released(self, run: Run, at: float, armed_late: bool) -> None:
        """What follows a release: the start recorded and reported."""
        run.started_at = at
        self._leave_window(run, released=True)
        metrics.FIRE_LATENESS.observe(max(0.0, run.started_at - run.fire_at))
        if run.cold_start:
            metrics.COLD_STARTS.inc()
        run.unreported_start = at  # said by the starts drain, or with its finish if that is first
        # The report keeps out of the release instant, but briefly: schedulers
        # judge whether a worker keeps up by these (reports held for the full
        # deferral made a busy worker look behind, and it got nothing more).
        self._starts.add(run)
        # Waiting on the run (for Docker, closing its attach stream is engine
        # work) can wait until the runs released with this one have started.
        # One armed after its time was released alone, as it armed: no batch
        # starts with it, and holding it only holds its slot (a backlog of
        # late process runs kept windows open: 16% of the machine idle at
        # 3,000), unless its follow-up is engine work that would slow the
        # arming of the runs behind it (Docker overload: max 7.9 s -> 9.0 s late).
        if not armed_late or self._runtime_for(run).follow_up_uses_engine:
            await self.windows.quiet()

    async def _past_the_instant(self) -> None:
        await self.windows.quiet(most=REPORT_DEFER_MOST)

    async def _report_starts(self, runs: list[Run]) -> None:
        for run in runs:  # those that ended meanwhile said it with their finish
            if (at := run.unreported_start) is not None:
                run.unreported_start = None
                container = run.armed.container_id if run.armed is not None else ""
                self._emit(run, started_event(run.execution_id, at, run.fire_at, container))

    def _emit(self, run: Run, event: dispatch_pb2.RunEvent) -> None:
        if run.spec.fire is not None:
            event.scheduled_at.CopyFrom(run.spec.fire)
        self.outbox.emit(event, prefer=run.origin)

    async def _watch(self, run: Run, armed: ArmedRun) -> RunOutcome:
        if not self._writes_files(run):
            # No output, no checkpoint file: nothing to publish while it runs
            # (the no-op runtime; its log key and publisher were a tenth of its run).
            return await armed.wait()

        def report(checkpoint: bytes) -> None:
            self._emit(run, checkpoint_event(run.execution_id, checkpoint))

        return await self.live.watch(run.spec, armed, self.live.key_for(run.spec), report)

    async def _upload(self, run: Run, outcome: RunOutcome) -> tuple[str, int]:
        """Store the output; its location and size, or ("", 0) (and a note on the outcome)."""
        if not self._writes_files(run):
            return "", 0
        try:
            try:
                size = os.stat(run.spec.spool_path).st_size  # metadata: on the loop, as the move is
            except (FileNotFoundError, NotADirectoryError):
                return "", 0  # no output: never opened, or the command put a file where its folder was
            return await self.live.store(self.live.key_for(run.spec), run.spec.spool_path, size)
        except (CronfleetError, OSError) as exc:
            metrics.LOG_UPLOAD_FAILURES.inc()
            outcome.error = (outcome.error + "; " if outcome.error else "") + f"log upload failed: {exc}"
            return "", 0

    def _report_finished(self, run: Run, outcome: RunOutcome, log_url: str, log_bytes: int) -> None:
        event = finished_event(run.execution_id, outcome, log_url, log_bytes)
        event.cold_start = run.cold_start
        event.container_id = run.armed.container_id if run.armed is not None else ""
        if (at := run.unreported_start) is not None:  # ended before its start was said: one event says both
            run.unreported_start = None
            proto.set_time(event.started_at, at)
            event.lateness_ms = (at - run.fire_at) * 1000
        self._emit(run, event)

    def _done(self, run: Run, outcome: RunOutcome) -> None:
        self.active.pop(run.execution_id, None)
        metrics.RUNS_FINISHED.inc(outcome.status)
        if self._writes_files(run) and not keep_now(run.spec.run_dir):
            self._folders.add(run.spec.run_dir)
        self.give_back(run.origin)
        log.info(
            "run_finished",
            execution_id=run.execution_id,
            job_id=run.spec.job_id,
            status=outcome.status,
            exit_code=outcome.exit_code,
            lateness_ms=round((run.started_at - run.fire_at) * 1000, 2) if run.started_at else None,
        )

    # ------------------------------------------------------- release windows
    def _enter_window(self, run: Run) -> None:
        self.windows.expect(run.fire_at)
        run.in_window = True

    def _leave_window(self, run: Run, released: bool) -> None:
        if run.in_window:
            self.windows.released(run.fire_at, started=released)
            run.in_window = False
