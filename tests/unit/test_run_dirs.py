"""A finished run's folder is removed, whatever the command left in it, or
kept for the next run when nothing of its run is left (worker.run_folders)."""

from __future__ import annotations

import itertools
import os
import subprocess
import time
from pathlib import Path

import pytest

from worker import run_folders
from worker.run_folders import (
    keep_now,
    kept_folder_for,
    make_checkpoint_folder,
    make_run_dir,
    may_reuse,
    remove_checkpoint_folder,
    remove_run_dir,
)
from worker.runtime import CHECKPOINT_FILE, REPORT_FILE, SPOOL_FILE


def test_the_usual_files_go_with_their_folder(tmp_path: Path) -> None:
    run_dir = tmp_path / "7-1"
    run_dir.mkdir()
    for name in (SPOOL_FILE, REPORT_FILE, CHECKPOINT_FILE):
        (run_dir / name).write_text("x")
    remove_run_dir(run_dir)
    assert not run_dir.exists()


def test_the_commands_own_files_and_folders_go_too(tmp_path: Path) -> None:
    run_dir = tmp_path / "8-1"
    (run_dir / "build" / "deep").mkdir(parents=True)
    (run_dir / "build" / "deep" / "a.o").write_text("x")
    (run_dir / ".hidden").write_text("x")
    (run_dir / REPORT_FILE).write_text("")
    remove_run_dir(run_dir)
    assert not run_dir.exists()


def test_a_folder_never_made_is_no_error(tmp_path: Path) -> None:
    remove_run_dir(tmp_path / "never")
    assert list(tmp_path.iterdir()) == []


def _ended_group() -> int:
    """A process group with nothing left in it."""
    child = subprocess.Popen(["true"], process_group=0)
    child.wait()
    return child.pid


def _kept(root: Path) -> list[Path]:
    """The folders kept in ``root``, for any owner."""
    return sorted(
        Path(p) for (parent, _), kept in run_folders._spare.items() if parent == str(root) for p in kept
    )


def test_an_emptied_folder_of_an_ended_group_is_kept_and_handed_to_the_next(tmp_path: Path) -> None:
    run_dir = tmp_path / "1-1"
    make_run_dir(run_dir)
    (run_dir / SPOOL_FILE).write_text("left when the store could not take it")
    may_reuse(run_dir, _ended_group())
    remove_run_dir(run_dir)
    assert _kept(tmp_path) == [run_dir], "kept under its own name"
    assert list(run_dir.iterdir()) == [], "emptied"
    handed = kept_folder_for(tmp_path, "")
    assert handed == run_dir and _kept(tmp_path) == []
    make_run_dir(handed)
    assert list(handed.iterdir()) == []
    assert kept_folder_for(tmp_path, "") is None, "handed once"


def test_a_folder_is_removed_if_its_group_lives_its_command_left_files_or_nobody_said(
    tmp_path: Path,
) -> None:
    alive, with_files, unsaid = tmp_path / "1-1", tmp_path / "2-1", tmp_path / "3-1"
    for run_dir in (alive, with_files, unsaid):
        make_run_dir(run_dir)
    (with_files / "result.csv").write_text("x")
    may_reuse(alive, os.getpgid(0))  # this test's own group: alive
    may_reuse(with_files, _ended_group())
    for run_dir in (alive, with_files, unsaid):
        remove_run_dir(run_dir)
    assert list(tmp_path.iterdir()) == []


def test_so_many_are_kept_and_no_more(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bound is the spool folder's, whatever the owners."""
    monkeypatch.setattr(run_folders, "SPARE_KEPT", 2)
    group = _ended_group()
    for n, owner in enumerate(("ann", "bob", "cy")):
        make_run_dir(tmp_path / f"{n}-1")
        may_reuse(tmp_path / f"{n}-1", group, owner)
    for n in range(3):
        remove_run_dir(tmp_path / f"{n}-1")
    assert len(_kept(tmp_path)) == 2 and len(list(tmp_path.iterdir())) == 2


def test_a_stopping_worker_removes_the_folders_it_kept(tmp_path: Path) -> None:
    for name in ("1-1", "2-1"):
        make_run_dir(tmp_path / name)
    (tmp_path / "2-1" / SPOOL_FILE).touch()  # a silent run's empty output, kept with its folder
    for name in ("1-1", "2-1"):
        may_reuse(tmp_path / name, _ended_group())
        remove_run_dir(tmp_path / name)
    assert len(_kept(tmp_path)) == 2
    run_folders.remove_kept({str(tmp_path)})
    assert list(tmp_path.iterdir()) == []


def test_a_folder_goes_only_to_a_later_run_of_the_same_owner(tmp_path: Path) -> None:
    make_run_dir(tmp_path / "1-1")
    may_reuse(tmp_path / "1-1", _ended_group(), "ann")
    remove_run_dir(tmp_path / "1-1")
    assert kept_folder_for(tmp_path, "bob") is None
    assert kept_folder_for(tmp_path, "ann") == tmp_path / "1-1"


def test_a_folder_whose_mode_the_command_changed_is_not_handed_on(tmp_path: Path) -> None:
    make_run_dir(tmp_path / "1-1")
    (tmp_path / "1-1").chmod(0o500)
    may_reuse(tmp_path / "1-1", _ended_group())
    remove_run_dir(tmp_path / "1-1")
    assert list(tmp_path.iterdir()) == []


def test_a_run_whose_folder_is_there_already_uses_it_and_the_kept_one_stays(tmp_path: Path) -> None:
    make_run_dir(tmp_path / "1-1")
    may_reuse(tmp_path / "1-1", _ended_group())
    remove_run_dir(tmp_path / "1-1")
    (tmp_path / "2-1").mkdir()
    (tmp_path / "2-1" / "left").write_text("x")  # a resent run's folder, from before
    make_run_dir(tmp_path / "2-1")
    assert (tmp_path / "2-1" / "left").exists() and _kept(tmp_path) == [tmp_path / "1-1"]
    assert kept_folder_for(tmp_path, "") == tmp_path / "1-1", "the kept one is still handed on"


def test_nothing_is_kept_once_the_worker_is_stopping(tmp_path: Path) -> None:
    make_run_dir(tmp_path / "1-1")
    run_folders.remove_kept({str(tmp_path)})
    may_reuse(tmp_path / "1-1", _ended_group())
    remove_run_dir(tmp_path / "1-1")
    assert list(tmp_path.iterdir()) == []


def test_a_silent_runs_empty_output_is_kept_with_its_folder_and_opened_again(tmp_path: Path) -> None:
    """No log is stored for a run that printed nothing: its 0-byte output
    stays, and the next run's output is that file again (no inode made)."""
    make_run_dir(tmp_path / "1-1")
    (tmp_path / "1-1" / SPOOL_FILE).touch(mode=0o644)
    (tmp_path / "1-1" / REPORT_FILE).write_text("")
    output = (tmp_path / "1-1" / SPOOL_FILE).stat().st_ino
    may_reuse(tmp_path / "1-1", _ended_group())
    remove_run_dir(tmp_path / "1-1")
    handed = kept_folder_for(tmp_path, "")
    assert handed is not None
    make_run_dir(handed)
    assert [p.name for p in handed.iterdir()] == [SPOOL_FILE]
    assert (handed / SPOOL_FILE).stat().st_ino == output


@pytest.mark.parametrize("kind", ["symlink", "hard link", "group-writable", "not empty"])
def test_an_output_unlike_a_silent_runs_is_not_kept(tmp_path: Path, kind: str) -> None:
    """Only a plain empty file of the worker's that only it may write is
    handed on: the next run's output opens it, and follows no link."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("not the run's")
    spool_root = tmp_path / "spool"
    make_run_dir(spool_root / "1-1")
    output = spool_root / "1-1" / SPOOL_FILE
    if kind == "symlink":
        output.symlink_to(elsewhere)
    elif kind == "hard link":
        os.link(elsewhere, output)
        elsewhere.write_text("")
    else:
        output.touch(mode=0o664 if kind == "group-writable" else 0o644)
        os.chmod(output, 0o664 if kind == "group-writable" else 0o644)  # whatever the umask
        if kind == "not empty":
            output.write_text("x")
    may_reuse(spool_root / "1-1", _ended_group())
    remove_run_dir(spool_root / "1-1")
    handed = kept_folder_for(spool_root, "")
    assert handed is not None, "kept, without that output"
    make_run_dir(handed)
    assert list(handed.iterdir()) == []
    assert elsewhere.exists()


def test_a_kept_empty_output_written_into_meanwhile_is_not_handed_on(tmp_path: Path) -> None:
    make_run_dir(tmp_path / "1-1")
    (tmp_path / "1-1" / SPOOL_FILE).touch(mode=0o644)
    may_reuse(tmp_path / "1-1", _ended_group())
    remove_run_dir(tmp_path / "1-1")
    (tmp_path / "1-1" / SPOOL_FILE).write_text("a detached process of the run")
    handed = kept_folder_for(tmp_path, "")
    assert handed == tmp_path / "1-1"
    make_run_dir(handed)
    assert list(handed.iterdir()) == [], "made anew when the run arms"


def test_a_kept_folder_gone_before_its_run_arms_is_made_anew(tmp_path: Path) -> None:
    make_run_dir(tmp_path / "1-1")
    may_reuse(tmp_path / "1-1", _ended_group())
    remove_run_dir(tmp_path / "1-1")
    handed = kept_folder_for(tmp_path, "")
    assert handed is not None
    (handed / SPOOL_FILE).unlink(missing_ok=True)
    handed.rmdir()  # by hand
    make_run_dir(handed)
    assert handed.is_dir() and list(handed.iterdir()) == []


def test_a_kept_folder_handed_to_a_run_that_never_armed_is_kept_again(tmp_path: Path) -> None:
    run_folders.make_spares(tmp_path, 1)
    handed = kept_folder_for(tmp_path, "ann")
    assert handed is not None
    remove_run_dir(handed)  # cancelled before it armed
    assert str(handed) not in run_folders._handed
    assert kept_folder_for(tmp_path, "ann") == handed, "kept again, for its owner"


def test_a_folder_kept_under_a_name_a_run_arrives_with_is_that_runs_alone(tmp_path: Path) -> None:
    # Its execution and attempt ran here before and its folder was kept: the
    # run uses it, and it is no longer handed to another.
    make_run_dir(tmp_path / "1-1")
    may_reuse(tmp_path / "1-1", _ended_group())
    remove_run_dir(tmp_path / "1-1")
    make_run_dir(tmp_path / "1-1")
    assert kept_folder_for(tmp_path, "") is None


def test_folders_made_ahead_go_to_runs_of_any_owner_after_the_owners_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_folders, "_names", itertools.count())
    (tmp_path / ".spare-0").mkdir()  # left by a worker of this id that was killed: left alone
    run_folders.make_spares(tmp_path, 2)
    ahead = {p.stat().st_ino for p in tmp_path.iterdir() if p.name != ".spare-0"}
    assert len(ahead) == 2
    made_ahead = [p for p in tmp_path.iterdir() if p.name != ".spare-0"]
    assert all([q.name for q in p.iterdir()] == [SPOOL_FILE] for p in made_ahead)
    assert all((p / SPOOL_FILE).stat().st_size == 0 for p in made_ahead), "an empty output, as kept ones"
    first = kept_folder_for(tmp_path, "ann")
    assert first is not None and first.stat().st_ino in ahead
    make_run_dir(first)
    may_reuse(first, _ended_group(), "ann")
    assert keep_now(first), "an ended run's folder is kept at once"
    assert kept_folder_for(tmp_path, "ann") == first, "the owner's own kept folder first"
    make_run_dir(first)
    may_reuse(first, _ended_group(), "ann")
    assert keep_now(first)
    second = kept_folder_for(tmp_path, "bob")
    assert second is not None and second.stat().st_ino in ahead and second != first
    assert kept_folder_for(tmp_path, "cy") is None, "none left: a new one"
    assert _kept(tmp_path) == [first]
    run_folders.remove_kept({str(tmp_path)})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".spare-0", second.name])


def test_a_folder_nobody_said_may_be_reused_is_not_kept_at_once(tmp_path: Path) -> None:
    make_run_dir(tmp_path / "1-1")
    assert not keep_now(tmp_path / "1-1")
    assert (tmp_path / "1-1").is_dir() and _kept(tmp_path) == [], "left to the removal"


def test_a_checkpoint_folder_goes_whole_with_its_file_or_what_was_left_beside_it(tmp_path: Path) -> None:
    private = tmp_path / "private"  # not there yet: made with the first folder
    alone, crowded = f"{private}/7/checkpoint", f"{private}/8/checkpoint"
    for checkpoint in (alone, crowded):
        make_checkpoint_folder(checkpoint)
        make_checkpoint_folder(checkpoint)  # again (a resend): no error
        Path(checkpoint).write_bytes(b"step 3")
    Path(crowded).with_suffix(".tmp").write_bytes(b"half")  # the command's own file beside it
    remove_checkpoint_folder(alone)
    remove_checkpoint_folder(crowded)
    remove_checkpoint_folder(f"{private}/9/checkpoint")  # never made (a run that never armed)
    assert list(private.iterdir()) == []


@pytest.fixture
def trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any ctime trusted at once (not only one older than TRUSTED_AFTER)."""
    monkeypatch.setattr(run_folders, "TRUSTED_AFTER", -(10**18))


def _seen_clean(root: Path) -> Path:
    """A folder kept after a full look (a silent run's empty output in it), handed on."""
    make_run_dir(root / "1-1")
    (root / "1-1" / SPOOL_FILE).touch(mode=0o644)
    may_reuse(root / "1-1", _ended_group())
    remove_run_dir(root / "1-1")
    handed = kept_folder_for(root, "")
    assert handed == root / "1-1"
    return handed


def _a_tick_later(folder: Path) -> None:
    """Until the filesystem's clock is past the folder's ctime, so that a
    change made now moves it (before Linux 6.13 the stamps are a kernel tick
    coarse; in production TRUSTED_AFTER covers that)."""
    seen, probe = folder.stat().st_ctime_ns, folder.parent / ".tick"
    deadline = time.monotonic() + 5
    while True:
        probe.touch()  # stamped with the clock now
        if probe.stat().st_ctime_ns > seen:
            break
        assert time.monotonic() < deadline, "the filesystem's clock never moved"
    probe.unlink()


def _listings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    listed: list[str] = []
    listdir = os.listdir

    def counted(path: str | Path) -> list[str]:
        listed.append(str(path))
        return listdir(path)

    monkeypatch.setattr(os, "listdir", counted)
    return listed


def test_a_folder_unchanged_since_it_was_seen_clean_is_not_listed_again(
    tmp_path: Path, trusted: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    handed = _seen_clean(tmp_path)
    listed = _listings(monkeypatch)
    make_run_dir(handed)
    may_reuse(handed, _ended_group())
    remove_run_dir(handed)
    assert listed == [], "armed and kept again by its ctime alone"
    assert kept_folder_for(tmp_path, "") == handed and list(handed.iterdir()) == [handed / SPOOL_FILE]


def test_a_folder_changed_since_it_was_seen_clean_is_looked_at_in_full(tmp_path: Path, trusted: None) -> None:
    handed = _seen_clean(tmp_path)
    _a_tick_later(handed)
    (handed / "left.txt").write_text("by a process detached from the last run")
    make_run_dir(handed)
    assert list(handed.iterdir()) == [], "made anew when its run arms"
    _a_tick_later(handed)
    (handed / "result.csv").write_text("this run's")
    may_reuse(handed, _ended_group())
    remove_run_dir(handed)
    assert _kept(tmp_path) == [] and not handed.exists(), "the command's files: removed"


def test_a_folder_whose_mode_changed_since_it_was_seen_clean_is_not_kept(
    tmp_path: Path, trusted: None
) -> None:
    handed = _seen_clean(tmp_path)
    make_run_dir(handed)
    _a_tick_later(handed)
    handed.chmod(0o700)
    may_reuse(handed, _ended_group())
    remove_run_dir(handed)
    assert _kept(tmp_path) == [] and not handed.exists()


def test_an_unchanged_folders_output_written_into_is_seen(tmp_path: Path, trusted: None) -> None:
    handed = _seen_clean(tmp_path)
    (handed / SPOOL_FILE).write_text("a detached process of the run")  # the folder's ctime stays
    make_run_dir(handed)
    assert list(handed.iterdir()) == [], "made anew when its run arms"


def test_a_folder_changed_lately_is_looked_at_in_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its ctime is younger than TRUSTED_AFTER: a change in the same tick of
    # the filesystem's clock would not move it.
    handed = _seen_clean(tmp_path)
    listed = _listings(monkeypatch)
    make_run_dir(handed)
    assert listed == [str(handed)]
