"""The process runtime on this host: gate, steps, checkpoints, kill."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from cronfleet.models import Step
from worker.process_runtime import ProcessRuntime
from worker.runtime import RunOutcome, RunSpec

_ids = itertools.count(1)
CHECKPOINTING = 'echo "from=$(cat "$CRONFLEET_CHECKPOINT")"; echo "step 3" > "$CRONFLEET_CHECKPOINT"; exit 1'


def spec(tmp_path: Path, command: str = "", **kw: Any) -> RunSpec:
    n = next(_ids)
    path = tmp_path / f"run{n}" / "out.log"
    return RunSpec(execution_id=n, job_id="job", attempt=1, spool_path=path, command=command, **kw)


async def run(s: RunSpec) -> tuple[RunOutcome, str]:
    armed = await ProcessRuntime(1.0).arm(s)
    await armed.release()
    outcome = await armed.wait()
    return outcome, s.spool_path.read_text()


async def test_the_checkpoint_is_seeded_and_kept(tmp_path: Path) -> None:
    outcome, out = await run(spec(tmp_path, CHECKPOINTING, checkpoint=b"step 2"))
    assert out == "from=step 2\n"
    assert (outcome.status, outcome.exit_code, outcome.checkpoint) == ("failed", 1, b"step 3\n")


async def test_no_checkpoint_written_is_none(tmp_path: Path) -> None:
    outcome, _ = await run(spec(tmp_path, "true"))
    assert outcome.checkpoint is None and outcome.status == "succeeded"


async def test_a_timeout_keeps_what_was_written(tmp_path: Path) -> None:
    outcome, _ = await run(spec(tmp_path, 'echo half > "$CRONFLEET_CHECKPOINT"; sleep 30', timeout_seconds=1))
    assert outcome.status == "timed_out" and outcome.checkpoint == b"half\n"


async def test_steps_report_results_and_stderr_joins_the_log(tmp_path: Path) -> None:
    steps = (Step(name="one", run="echo out; echo err >&2"), Step(name="two", run="exit 4"))
    outcome, out = await run(spec(tmp_path, steps=steps))
    assert [(s.name, s.exit_code) for s in outcome.steps] == [("one", 0), ("two", 4)]
    assert "out\nerr\n" in out and outcome.exit_code == 4
