"""Release FIFOs: a worker on the engine's own host releases an armed
container's run by writing ``go`` into a FIFO the container sees, instead of
a line on its attach stream.

A line on the attach stream travels worker -> engine -> the container's shim
-> the gate's stdin, which the gate reads a byte per system call; fifty runs
released together paid that path fifty times while their commands were
starting, on the same two cores. Fifty every-second per_job jobs started
p50 18 ms, p99 52-58 ms late through the engine, p50 9-11 ms, p99 42-44 ms
through FIFOs (A/B, same hour).

Each container gets a folder of its own (``ROOT/RANDOM``, ``ROOT`` 0700 and
this worker's alone), bind-mounted read-only at ``/gate``: it holds that
container's FIFOs and nothing else (a FIFO opens for reading and writing on
a read-only mount; nothing can be created there). The worker holds each
FIFO open for reading and writing from before the gate opens it, so a word
written before the gate reads is kept, not lost.

Whether the engine sees the worker's files (a worker in a container using
the host's engine does not, unless the folder is mounted at the same path)
is checked once at start by a probe container; if not, every run is
released through the engine as before. A gate that finds no FIFO at
``/gate`` reads its stdin, so either way the same script works.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

MOUNT = "/gate"  # where a container sees its folder


def held_fifo(path: str) -> int:
    """A FIFO made at ``path`` (0600) and opened for reading and writing, the
    way every release FIFO is held until its run ends: opening never
    blocks, its reader never sees end of file, and a word written before
    anyone reads is kept."""
    os.mkfifo(path, 0o600)
    return os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)


@dataclass
class Fifo:
    """One FIFO of a container's folder, held open by the worker."""

    path: str
    fd: int

    def say(self, word: bytes) -> None:
        """Write ``word`` and a newline: one write, never blocking (a FIFO holds 64 kB)."""
        os.write(self.fd, word + b"\n")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)
        with contextlib.suppress(OSError):
            os.unlink(self.path)


class ReleaseFifos:
    """This worker's release folders, one per container (``enabled`` once the
    probe has shown the engine sees them)."""

    def __init__(self, root: Path, user: str) -> None:
        self.root = root
        self.enabled = False
        uid, _, gid = user.partition(":")
        # The run's user opens its FIFOs: given to it when the worker may
        # (root, numeric ids); else open to all, inside a folder no one else
        # on the host can reach and that only its container mounts.
        self._owner = (int(uid), int(gid or uid)) if uid.isdigit() and (gid or uid).isdigit() else None

    def reset(self) -> str:
        """Start afresh (a previous life's folders are gone with its containers);
        the probe's token, written where the probe container reads it."""
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True, mode=0o700)
        os.chmod(self.root, 0o700)
        token = secrets.token_hex(16)
        probe = self.root / "probe"
        probe.mkdir(mode=0o755)
        os.chmod(probe, 0o755)
        (probe / "token").write_text(token + "\n")
        os.chmod(probe / "token", 0o644)
        return token

    @property
    def probe_folder(self) -> str:
        return str(self.root / "probe")

    def folder(self) -> str | None:
        """A fresh folder for one container, or None (release through the engine)."""
        if not self.enabled:
            return None
        path = tempfile.mkdtemp(dir=self.root)
        os.chmod(path, 0o755)
        return path

    def fifo(self, folder: str, name: str) -> Fifo:
        path = os.path.join(folder, name)
        fd = held_fifo(path)
        owned = False
        if self._owner is not None:
            with contextlib.suppress(PermissionError):  # a worker not running as root
                os.chown(path, *self._owner)
                owned = True
        if not owned:
            os.chmod(path, 0o666)
        return Fifo(path, fd)

    @staticmethod
    def remove(folder: str | None) -> None:
        if folder:
            shutil.rmtree(folder, ignore_errors=True)
