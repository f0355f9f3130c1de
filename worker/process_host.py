"""What the process runtime needs of its host: a pseudo-terminal to be had
(the launcher's job control), descriptors it inherited kept from its runs,
the process groups of a session (a dead launcher's runs), and a private,
memory-backed folder for the runs' files."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile


def can_launch() -> bool:
    """The launcher needs a pseudo-terminal (and a shell) to start with."""
    try:
        master, terminal = os.openpty()
    except OSError:
        return False
    os.close(master)
    os.close(terminal)
    return os.access("/bin/sh", os.X_OK)


def close_inherited_on_exec() -> None:
    """Mark the descriptors this process inherited from its launcher
    close-on-exec: posix_spawn closes nothing itself, and every descriptor
    Python opens is close-on-exec already (PEP 446), as are gRPC's."""
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own, closed by now
            if int(name) > 2:
                os.set_inheritable(int(name), False)


def groups_in_session(session: int) -> set[int]:
    """The process groups of the live processes in ``session`` (read from
    /proc: a dead launcher's runs are no longer its children)."""
    groups = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                with open(f"/proc/{name}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
                if int(fields[3]) == session:  # state, ppid, pgrp, session
                    groups.add(int(fields[2]))
    return groups


def private_folder() -> str:
    """A folder of this worker's own (mode 0700), memory-backed where
    /dev/shm is, removed with the worker's other leftovers when it dies."""
    return tempfile.mkdtemp(prefix=f"cronfleet-launch-{os.getpid()}-", dir=_private_root())


def _private_root() -> str | None:
    """Memory-backed /dev/shm where there is one, and sweep what dead
    workers left there (a SIGKILLed worker does not remove its folder)."""
    root = "/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
    with contextlib.suppress(OSError):
        for entry in os.scandir(root):
            owner = entry.name.split("-")[2:3] if entry.name.startswith("cronfleet-launch-") else []
            if owner and owner[0].isdigit() and not os.path.exists(f"/proc/{owner[0]}"):
                shutil.rmtree(entry.path, ignore_errors=True)
    return root
