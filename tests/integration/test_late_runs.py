"""A run armed after its time (a backlog, an overloaded worker) was released
alone, as it armed: its follow-up (wait, upload, report, slot given back)
does not wait for the release windows that keep follow-up work out of fire
instants. Real processes (the process runtime), a real outbox."""

from __future__ import annotations

import time
from pathlib import Path

from tests.helpers import Recorder, until
from tests.integration.test_withdrawal import assign, make_runs


async def test_a_late_run_gives_its_slot_back_while_a_window_is_open(tmp_path: Path) -> None:
    sink = Recorder()
    given_back: list[str] = []
    runs = make_runs(tmp_path, sink)
    runs.give_back = given_back.append
    # Another run, overdue and not released yet (still arming, say): the
    # windows stay open for it, and work that defers would wait the longest.
    runs.windows.expect(time.time() - 1)
    runs.windows.max_defer = 300.0
    assign(runs, 1, "true", time.time() - 1)  # late on arrival
    await until(lambda: sink.finished(1) is not None, timeout=20)
    assert given_back == ["scheduler"]
    assert runs.windows.busy_for(time.time()) > 0, "the window was open all along"


async def test_a_run_released_at_its_instant_still_waits_for_the_window(tmp_path: Path) -> None:
    sink = Recorder()
    runs = make_runs(tmp_path, sink)
    runs.windows.max_defer = 300.0
    due = time.time() + 0.5
    assign(runs, 1, "true", due)
    await until(lambda: runs.active[1].started_at is not None)  # released
    other = time.time() - 1
    runs.windows.expect(other)  # a run released with it is not started yet
    assert sink.finished(1) is None, "its follow-up keeps out of the window"
    runs.windows.released(other)  # that one started: the window settles and closes
    await until(lambda: sink.finished(1) is not None, timeout=20)
