"""A run's folder: made when it is armed, removed when it has ended, or kept
emptied, under its name, and handed to a later run (:func:`kept_folder_for`,
as the run arrives: its folder is named then).

Why kept: on ext4 without a journal (the bench's machine) every inode the
kernel allocates first steps over each inode freed in the last minutes
(``find_inode_bit``, ``recently_deleted``), so a folder made and removed per
run made the next runs' files dearer the more runs had gone before: 3,000
`true` runs went 1,376 -> 1,250 runs/s over three runs in a row, and 1,630
with the folders kept (docs/benchmark-history.md, Eighteenth session).

A folder is kept only when its run has ended with no process of its group
left (:func:`may_reuse`, the process runtime's runs), it is empty once the
worker's own files are out, and it is as a new folder is (owner, mode, no
ACL); it goes only to a later run of the same owner (a process the run
detached from its group, still working in the folder, could write into the
next one's), and is looked at again when the run it was handed to arms.
It keeps its first run's name: renamed to each run's (and back when kept),
it cost two renames a run, the most costly calls of a short run's worker
time after its fork (a rename on ext4 looks both names up: 25 us of CPU
each here).

"Empty" allows one file: the output of a run that printed nothing (no log
is stored for it, cronfleet.logstore), a plain file of 0 bytes, which the
next run's output opens again rather than making a new one: the file made
and freed per silent run cost what the folder did (3,000 `true` runs:
1,351 -> 1,565 runs/s with the log store's skip of empty output). As with
the folder, a process the run detached from its group that still writes to
its output would write into the next run's, which is the same owner's.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import itertools
import os
import shutil
import stat
import threading
import time
from pathlib import Path

from worker.runtime import REPORT_FILE, SPOOL_FILE

SPARE_KEPT = 1024  # emptied folders kept per spool folder (all owners); past that, removed

# (parent, owner) -> kept folders; owner None: made ahead, never used (make_spares)
_spare: dict[tuple[str, str | None], collections.deque[Path]] = {}
_held: collections.Counter[str] = collections.Counter()  # parent -> folders kept there
_lock = threading.Lock()  # _held: kept by the loop and the removal thread, taken by the loop
# (_clean_at too is touched by both: only whole get, set and pop calls, each atomic)
_reusable: dict[str, str] = {}  # folder -> its run's owner, once nothing of the run is left
_fresh: dict[str, tuple[int, int, int]] = {}  # parent -> a new folder's mode, uid, gid
_closed: set[str] = set()  # parents whose worker is stopping: nothing more kept
_handed: dict[str, str] = {}  # kept folders handed to runs not yet armed -> their owner
_clean_at: dict[str, tuple[int, int]] = {}  # kept folder -> (inode, ctime) when seen clean (_unchanged)
_names = itertools.count()
_EUID = os.geteuid()  # the worker's: a call a check was one more syscall a run


def kept_folder_for(parent: Path, owner: str) -> Path | None:
    """A folder kept in ``parent`` for a run of ``owner`` (one of theirs,
    else one made ahead), now the run's; None: it gets a new one."""
    where = str(parent)
    for spare in (_spare.get((where, owner)), _spare.get((where, None))):
        while spare:
            try:
                kept = spare.pop()
            except IndexError:
                break  # the last one, taken meanwhile (a stopping worker's sweep)
            _count(where, -1)
            _handed[str(kept)] = owner
            return kept
    return None


def make_run_dir(path: Path) -> None:
    """The run's folder: the kept one it was handed, looked at again (what a
    process detached from its run wrote into it meanwhile makes it go), or a
    new one."""
    if _handed.pop(where := str(path), None) is not None:
        if _unchanged(where) or _bare(path):
            return
        shutil.rmtree(path, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.unlink(path)  # a file put in its place
    try:
        os.mkdir(path)
    except FileNotFoundError:
        os.makedirs(path, exist_ok=True)
    except FileExistsError:  # a resent run's, or a folder kept under this name (its run's)
        _no_longer_kept(path)
    parent = os.path.dirname(path)  # str(path.parent) for a run's folder: a Path less made
    if parent not in _fresh:
        st = os.stat(path)
        _fresh[parent] = (st.st_mode, st.st_uid, st.st_gid)


def _no_longer_kept(path: Path) -> None:
    """A run whose folder is there already uses it: if it is a kept one
    (a run of this execution and attempt ran here before), no other run gets it."""
    for (parent, _), spare in _spare.items():
        with contextlib.suppress(ValueError):
            spare.remove(path)
            _count(parent, -1)


def make_spares(parent: Path, n: int) -> None:
    """Up to ``n`` folders made ahead in ``parent`` (a worker's start), for
    runs of any owner: a fresh worker's first burst takes them rather than
    making a folder per run (3,000 `true` runs on two fresh workers made
    1,400 folders, an ext4 mkdir of 30 to 600 us of CPU here each). Each
    holds an empty output, as a kept folder of a silent run does: the run's
    output opens it rather than making a file, another ext4 inode of 180 to
    450 us (3,000 `true` runs: the runs' CPU 567 / 527 / 573 -> 477 / 423 /
    427 us each)."""
    os.makedirs(parent, exist_ok=True)
    where = str(parent)
    spare = _spare.setdefault((where, None), collections.deque())
    wanted = min(n, SPARE_KEPT) - _held[where]  # runs may take them as they come: a count, not a level
    while wanted > 0:
        made = f"{where}/.spare-{next(_names)}"
        try:
            os.mkdir(made)
        except FileExistsError:
            continue  # one a worker of this id left behind (killed): left alone
        with contextlib.suppress(OSError):  # a spare all the same: its run's output makes the file
            os.close(os.open(f"{made}/{SPOOL_FILE}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        if where not in _fresh:
            st = os.stat(made)
            _fresh[where] = (st.st_mode, st.st_uid, st.st_gid)
        spare.append(Path(made))
        _count(where, 1)
        wanted -= 1


def may_reuse(path: Path, group: int, owner: str = "") -> None:
    """The run that had ``path`` has ended: its folder may be kept for a later
    run of ``owner`` if no process of its process ``group`` is left."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        _reusable[str(path)] = owner
    except PermissionError:
        pass  # a member that changed its user: still there


def keep_now(path: Path) -> bool:
    """Whether the folder of a run that just ended was kept, here and now:
    only one that may be (may_reuse), a few calls on its own entries. Kept
    before the run's room is given back, it is there for the run that room
    goes to: left to the removal thread, it came too late for most (3,000
    `true` runs: 7 in 10 armed made a new folder, an ext4 mkdir of 30 to 600
    us here)."""
    owner = _reusable.pop(str(path), None)
    return owner is not None and _keep(path, owner)


def remove_run_dir(path: Path) -> None:
    """A finished run's folder: kept for a later run when it may be (see
    above), else removed. Often it is empty (the output was moved into the
    log store): one rmdir; else the worker's own files go (a silent run's
    empty output among them) and it is tried again. What the command left
    needs an rmtree (which walks and stats: 6% of a short process run's
    worker time when every run took it)."""
    handed_to = _handed.pop(where := str(path), None)  # a run that never armed: kept again
    owner = _reusable.pop(where, handed_to)
    if owner is not None and _keep(path, owner):
        return
    _clean_at.pop(where, None)
    if _rmdir(path):
        return
    _remove_own_files(path)
    if not _rmdir(path):
        shutil.rmtree(path, ignore_errors=True)  # the command's own files


async def remove_run_dirs_off_the_loop(paths: list[Path]) -> None:
    await asyncio.to_thread(_remove_run_dirs, paths)


def _remove_run_dirs(paths: list[Path]) -> None:
    for path in paths:
        remove_run_dir(path)


def _rmdir(path: Path | str) -> bool:
    """Whether the folder is gone (removed, or never made: a run that never armed)."""
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False  # not empty
    return True


def remove_kept(parents: set[str]) -> None:
    """A stopping worker's folders kept under ``parents`` go, and no more are kept."""
    _closed.update(parents)
    for (parent, _), spare in _spare.items():
        while parent in parents and spare:
            try:
                kept = spare.pop()
            except IndexError:
                break  # taken meanwhile
            _count(parent, -1)
            _clean_at.pop(str(kept), None)
            # A silent run's empty output may be in it (see above): it goes too.
            shutil.rmtree(kept, ignore_errors=True)


def _keep(path: Path, owner: str) -> bool:
    parent = os.path.dirname(path)  # str(path.parent) for a run's folder: a Path less made
    spare = _spare.setdefault((parent, owner), collections.deque())
    if _held[parent] < SPARE_KEPT and parent not in _closed and _clean(path, parent):
        spare.append(path)
        _count(parent, 1)
        return True
    _clean_at.pop(str(path), None)
    return False


def _clean(path: Path, parent: str) -> bool:
    """Holding nothing of the command's (the worker's own files taken out),
    and as a new folder is: its mode and owner, no ACL."""
    if _unchanged(where := str(path)):
        return True
    try:
        st = os.stat(path)
        fresh = (st.st_mode, st.st_uid, st.st_gid) == _fresh.get(parent)
        left = _without_own_files(path, os.listdir(path))
        if left not in ([], [SPOOL_FILE]) or _has_acl(path) or not fresh:
            return False  # the command's files, or a mode or ACL of its own: removed, not handed on
    except OSError:
        return False
    _seen_clean(where, st)
    return True


# A folder seen clean (bare, a new folder's mode and owner, no ACL) is looked
# at again, when it is handed on and when its next run ends, by its ctime:
# any entry made, removed or renamed in it, and any change of its mode,
# owner or ACL, moves it. Unmoved, only its output's bytes may have changed
# (a write moves the file's times, not the folder's): a stat and an lstat
# instead of two listings, two lstats and a listxattr a silent run (a sixth
# of the worker's time a `true` run, in the listings mostly). A ctime is
# trusted only if it was TRUSTED_AFTER old when the folder was seen clean:
# a change later than that is stamped later by this machine's clock, however
# coarse the filesystem's stamps (a few ms of kernel tick before Linux 6.13;
# whole seconds on some, two on FAT); a folder changed more recently is
# looked at in full. (A network filesystem's server stamps its own times: a
# spool folder there with a clock seconds behind would weaken this.) The
# folder's inode is compared too: another folder put in its place is not it.
TRUSTED_AFTER = 3_000_000_000  # ns


def _seen_clean(where: str, st: os.stat_result) -> None:
    if time.time_ns() - st.st_ctime_ns > TRUSTED_AFTER:
        _clean_at[where] = (st.st_ino, st.st_ctime_ns)
    else:
        _clean_at.pop(where, None)


def _unchanged(where: str) -> bool:
    """Whether the folder is as it was when last seen clean (see above),
    its output (if any) still empty."""
    clean_at = _clean_at.get(where)
    if clean_at is None:
        return False
    try:
        st = os.stat(where)
        if (st.st_ino, st.st_ctime_ns) == clean_at and _empty_output(os.path.join(where, SPOOL_FILE), True):
            return True
    except OSError:
        pass
    _clean_at.pop(where, None)
    return False


def _without_own_files(path: Path, names: list[str]) -> list[str]:
    """``names`` (the folder's) once the worker's own files are out of it,
    an empty output kept (see above): looked for in the listing, not
    removed blind (a missing steps' report was a failed call a run)."""
    if REPORT_FILE in names:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(path, REPORT_FILE))
        names.remove(REPORT_FILE)
    if SPOOL_FILE in names and not _empty_output(output := os.path.join(path, SPOOL_FILE)):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(output)
        names.remove(SPOOL_FILE)
    return names


def _bare(path: Path) -> bool:
    """Empty, or holding only an empty output (see above); False: not there."""
    try:
        names = os.listdir(path)
    except OSError:
        return False  # removed (by hand), or a file put in its place
    return not names or (names == [SPOOL_FILE] and _empty_output(os.path.join(path, SPOOL_FILE)))


def _empty_output(path: str, or_none: bool = False) -> bool:
    """A plain file of 0 bytes, the worker's own, not linked elsewhere, that
    only its owner may write: what a silent run's output leaves (or, if
    ``or_none``, no file there at all)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return or_none
    except OSError:
        return False
    return (
        stat.S_ISREG(st.st_mode)
        and st.st_size == 0
        and st.st_nlink == 1
        and st.st_uid == _EUID
        and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


def _remove_own_files(path: Path) -> None:
    """The files the worker makes in a run's folder: the steps' report, and
    the output when it was not moved into the log store. (A process run's
    checkpoint file is in the runtime's private folder, a Docker run's in
    its container.)"""
    for name in (REPORT_FILE, SPOOL_FILE):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(path, name))


def _count(parent: str, change: int) -> None:
    with _lock:
        _held[parent] += change


def _has_acl(path: Path) -> bool:
    try:
        return any(name.startswith("system.posix_acl") for name in os.listxattr(path))
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return False  # a filesystem without extended attributes has no ACL
        raise


def make_checkpoint_folder(checkpoint: str) -> None:
    """A process run's checkpoint folder in the worker's private folder
    (one mkdir; the private folder is made again only if it went)."""
    try:
        os.mkdir(os.path.dirname(checkpoint))
    except FileNotFoundError:
        os.makedirs(os.path.dirname(checkpoint), exist_ok=True)
    except FileExistsError:
        pass


def remove_checkpoint_folder(checkpoint: str) -> None:
    """Its checkpoint file and the folder (two calls), or an rmtree for what
    the command left beside the file (which opens, lists and stats: eight
    calls a run when it was the only way)."""
    folder = os.path.dirname(checkpoint)
    with contextlib.suppress(OSError):  # missing, or a mode the command set: the rmtree below
        os.unlink(checkpoint)
    if not _rmdir(folder):
        shutil.rmtree(folder, ignore_errors=True)  # something beside the file
