"""Release FIFOs' folders on the worker's side (no engine: the integration
tests run them in containers)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from worker.release_fifos import ReleaseFifos


def test_a_folder_per_container_only_once_the_probe_said_yes(tmp_path: Path) -> None:
    fifos = ReleaseFifos(tmp_path / "gates" / "w1", "1000:1000")
    token = fifos.reset()
    assert stat.S_IMODE((tmp_path / "gates" / "w1").stat().st_mode) == 0o700
    assert (Path(fifos.probe_folder) / "token").read_text() == token + "\n"
    assert fifos.folder() is None, "released through the engine until the probe passed"
    fifos.enabled = True
    a, b = fifos.folder(), fifos.folder()
    assert a and b and a != b and Path(a).parent == fifos.root


def test_a_fifo_keeps_what_is_written_before_the_gate_reads_and_goes_with_its_folder(tmp_path: Path) -> None:
    fifos = ReleaseFifos(tmp_path / "w1", "1000:1000")
    fifos.reset()
    fifos.enabled = True
    folder = fifos.folder()
    assert folder is not None
    go = fifos.fifo(folder, "go")
    info = os.stat(go.path)
    assert stat.S_ISFIFO(info.st_mode)
    if os.geteuid() == 0:  # given to the run's user, for it alone
        assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (1000, 1000, 0o600)
    go.say(b"go")
    reader = os.open(go.path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        assert os.read(reader, 16) == b"go\n", "written before anyone opened it to read, and kept"
    finally:
        os.close(reader)
    go.close()
    assert not os.path.exists(go.path)
    fifos.remove(folder)
    assert not os.path.exists(folder)


def test_a_user_named_not_numbered_gets_a_fifo_open_to_all_in_its_private_folder(tmp_path: Path) -> None:
    fifos = ReleaseFifos(tmp_path / "w1", "runner")
    fifos.reset()
    fifos.enabled = True
    folder = fifos.folder()
    assert folder is not None
    go = fifos.fifo(folder, "go")
    assert stat.S_IMODE(os.stat(go.path).st_mode) == 0o666
    go.close()
