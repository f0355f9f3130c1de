"""CPU time per fire, by role, over a throughput run (from ``/proc``): the
rate moves with this machine's hour (a fifth and more), the CPU a fire
takes in each role much less, so a slow hour can be told from a slower path.

A role's figure is its process and everything under it: a worker's runs
(forked by its launcher) and a Postgres server's backends, live ones and
those that ended (their time is added to the parent that reaped them)."""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from bench.roles import role_pids

HZ = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Snapshot:
    own: dict[str, int]  # role -> clock ticks of its processes themselves
    tree: dict[str, int]  # role -> the same, with everything under them
    busy: int  # the machine's ticks not idle (all cores)
    total: int  # all its ticks


def snapshot(state: Path, postgres_data: Path) -> Snapshot:
    """Each role's CPU so far (roles named as ``scheduler`` for
    ``scheduler-1`` and ``scheduler-2``), Postgres's, and the machine's."""
    roots = role_pids(state)
    postmaster = _postmaster(postgres_data)
    if postmaster is not None:
        roots["postgres"] = postmaster
    procs = _processes()
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (ppid, _, _) in procs.items():
        children[ppid].append(pid)
    own: dict[str, int] = defaultdict(int)
    tree: dict[str, int] = defaultdict(int)
    for name, root in roots.items():
        role = name.rsplit("-", 1)[0] if name != "postgres" else name
        if root not in procs:
            continue
        own[role] += procs[root][1]
        stack = [root]
        while stack:
            pid = stack.pop()
            _, ticks, reaped = procs[pid]
            tree[role] += ticks + reaped
            stack.extend(p for p in children[pid] if p in procs)
    busy, total = _machine()
    return Snapshot(dict(own), dict(tree), busy, total)


def per_fire(before: Snapshot, after: Snapshot, fires: int) -> dict[str, float]:
    """Microseconds of CPU per fire: each role (with what runs under it), and
    ``machine_busy``, the share of the machine's time not idle."""
    out = {
        role: (after.tree[role] - before.tree.get(role, 0)) / HZ * 1e6 / max(fires, 1) for role in after.tree
    }
    if "worker" in after.own:  # a worker's runs (and their launcher), apart
        own = after.own["worker"] - before.own.get("worker", 0)
        out["worker_runs"] = (
            (after.tree["worker"] - before.tree.get("worker", 0) - own) / HZ * 1e6 / max(fires, 1)
        )
    out["machine_busy"] = (after.busy - before.busy) / max(after.total - before.total, 1)
    return out


def describe(figures: dict[str, float]) -> str:
    names = {
        "scheduler": "schedulers",
        "worker": "workers",
        "postgres": "Postgres",
        "coordinator": "coordinators",
        "gateway": "gateway",
    }
    roles = [r for r in names if r in figures]
    parts = []
    for role in roles:
        text = f"{names[role]} {figures[role]:.0f}"
        if role == "worker" and figures.get("worker_runs", 0) >= 1:
            text += f" (their runs {figures['worker_runs']:.0f})"
        parts.append(text)
    spent = sum(figures[r] for r in roles)
    return (
        f"CPU per fire (us): {', '.join(parts)}; all {spent:.0f}, "
        f"the machine {figures['machine_busy']:.0%} busy"
    )


def _processes() -> dict[int, tuple[int, int, int]]:
    """pid -> (parent, its own ticks, its reaped children's ticks)."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fields = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        out[int(name)] = (
            int(fields[1]),
            int(fields[11]) + int(fields[12]),
            int(fields[13]) + int(fields[14]),
        )
    return out


def _postmaster(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def _machine() -> tuple[int, int]:
    """(ticks not idle, all ticks) of every core since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields[:8]) - idle, sum(fields[:8])
