"""A finished run's folder is removed, whatever the command left in it (worker.runtime)."""

from __future__ import annotations

from pathlib import Path

from worker.runtime import CHECKPOINT_FILE, REPORT_FILE, SPOOL_FILE, remove_run_dir


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
