"""The watchdog's reading of its pipe (worker.watchdog.watch): lines the
worker writes while it naps wait in the pipe and are all heard, and the
silence it allows is counted from its last read."""

from __future__ import annotations

import os
import select
from pathlib import Path

import pytest

from worker import watchdog


def test_lines_written_while_it_naps_are_heard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    read_end, write_end = os.pipe()
    naps: list[float] = []
    killed: list[str] = []

    def nap(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 1:  # after the first read: the worker says more, then dies
            os.write(write_end, b"+200\n-100\n")
            os.close(write_end)

    monkeypatch.setattr("time.sleep", nap)  # the watchdog's nap

    def kill(run: str) -> str:
        killed.append(run)
        return ""

    monkeypatch.setattr(watchdog, "kill", kill)
    os.write(write_end, b"+100\n")
    watchdog.watch(30, str(tmp_path), read_end)
    os.close(read_end)
    assert naps == [watchdog.NAP, watchdog.NAP], "a nap after each read"
    assert killed == ["200"], "the group said while it napped is killed; the one said ended is not"
    assert (tmp_path / "200").read_text() == "the worker died"


def test_the_silence_it_allows_is_counted_from_its_last_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read_end, write_end = os.pipe()
    waits: list[float] = []
    real_select = select.select

    def recording_select(r: list[int], w: list[int], x: list[int], timeout: float) -> tuple[list[int], ...]:
        waits.append(timeout)
        if len(waits) == 2:
            os.close(write_end)  # the worker dies while the watchdog waits
        return real_select(r, w, x, 0)

    monkeypatch.setattr("select.select", recording_select)
    monkeypatch.setattr("time.sleep", lambda _: None)
    os.write(write_end, b".\n")
    watchdog.watch(2.0, str(tmp_path), read_end)
    os.close(read_end)
    assert waits == [2.0, pytest.approx(2.0 - watchdog.NAP)], "the nap is part of the silence allowed"


async def test_a_long_flush_is_written_in_whole_lines_of_at_most_pipe_buf(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The launcher writes its runs' groups into the same pipe: a write past
    # PIPE_BUF could be cut by one of its lines, and the watchdog would read
    # two broken ones.
    dog = watchdog.Watchdog(30, str(tmp_path / "fenced"))
    writes: list[bytes] = []
    write = os.write

    def recorded(fd: int, data: bytes) -> int:
        if fd == dog.pipe:
            writes.append(bytes(data))
        return write(fd, data)

    monkeypatch.setattr(os, "write", recorded)
    for group in range(1_000_000, 1_001_000):  # 9 bytes a line: 9,000 in all
        dog.started(group)
    dog.flush()
    monkeypatch.undo()
    dog.stop()
    assert len(writes) > 1 and all(len(w) <= select.PIPE_BUF and w.endswith(b"\n") for w in writes)
    assert b"".join(writes) == b"".join(b"+%d\n" % g for g in range(1_000_000, 1_001_000))
