"""A run's folder: made when it is armed, removed when it has ended, or kept
emptied and renamed into a later run's.

Why kept: on ext4 without a journal (the bench's machine) every inode the
kernel allocates first steps over each inode freed in the last minutes
(``find_inode_bit``, ``recently_deleted``), so a folder made and removed per
run made the next runs' files dearer the more runs had gone before: 3,000
`true` runs went 1,376 -> 1,250 runs/s over three runs in a row, and 1,630
with the folders kept (README, Eighteenth session). A folder is kept only
when its run has ended with no process of its group left (:func:`may_reuse`,
the process runtime's runs) and it is empty once the worker's own files are
out; anything else is removed as before.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import os
import shutil
from pathlib import Path

from worker.runtime import CHECKPOINT_FILE, REPORT_FILE, SPOOL_FILE

SPARE_KEPT = 256  # emptied folders kept per spool folder; past that, removed

_spare: dict[str, collections.deque[str]] = {}
_reusable: set[str] = set()
_names = itertools.count()


def make_run_dir(path: Path) -> None:
    """The run's folder: a kept one renamed to it, else a new one."""
    spare = _spare.get(str(path.parent))
    while spare:
        try:
            os.rename(spare.pop(), path)
            return
        except IndexError:
            break  # taken meanwhile by the removing thread's neighbour
        except OSError:
            continue  # removed meanwhile (by hand): the next, or a new one
    os.makedirs(path, exist_ok=True)


def may_reuse(path: Path, group: int) -> None:
    """The run that had ``path`` has ended: its folder may be kept for a later
    run if no process of its process ``group`` is left to write into it."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        _reusable.add(str(path))
    except PermissionError:
        pass  # a member that changed its user: still there


def remove_run_dir(path: Path) -> None:
    """A finished run's folder: kept for a later run when it may be (see
    above), else removed. Usually it holds only what the worker made (the
    output was moved into the log store): an unlink or two and one rmdir.
    What the command left needs an rmtree (which walks and stats: 6% of a
    short process run's worker time when every run took it)."""
    key = str(path)
    if key in _reusable:
        _reusable.discard(key)
        if _keep(path):
            return
    for name in (CHECKPOINT_FILE, REPORT_FILE, SPOOL_FILE):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(path, name))
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return  # never made: a run that never armed
        except OSError:
            continue  # not empty yet
    shutil.rmtree(path, ignore_errors=True)  # the command's own files


def _keep(path: Path) -> bool:
    spare = _spare.setdefault(str(path.parent), collections.deque())
    if len(spare) >= SPARE_KEPT:
        return False
    for name in (CHECKPOINT_FILE, REPORT_FILE, SPOOL_FILE):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(path, name))
    try:
        if os.listdir(path):
            return False  # the command's own files: removed, not handed on
        kept = f"{path.parent}/.spare-{next(_names)}"
        os.rename(path, kept)
    except OSError:
        return False
    spare.append(kept)
    return True


def remove_kept() -> None:
    """Remove the folders kept (a worker stopping: nobody will take them)."""
    for spare in _spare.values():
        while spare:
            with contextlib.suppress(IndexError, OSError):
                os.rmdir(spare.pop())
