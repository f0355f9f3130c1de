"""Shards: which scheduler claims which slice of the schedule table."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping


def shard_for(job_id: uuid.UUID | str, shards: int) -> int:
    """hash(job_id) mod shards; stable across processes and versions."""
    raw = job_id.bytes if isinstance(job_id, uuid.UUID) else uuid.UUID(job_id).bytes
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big") % shards


def assign_shards(shards: int, schedulers: Iterable[str], current: Mapping[int, str]) -> dict[int, str]:
    """Spread ``shards`` over live ``schedulers``, moving as few as possible.

    A shard stays with its owner while the owner lives and holds no more than
    its fair share; orphaned and surplus shards go to the least loaded.
    """
    live = sorted(set(schedulers))
    if not live:
        return {}
    base, extra = divmod(shards, len(live))
    # The first `extra` schedulers (by current load, then id) may hold one more.
    load: dict[str, list[int]] = {s: [] for s in live}
    for shard in range(shards):
        owner = current.get(shard)
        if owner in load:
            load[owner].append(shard)
    order = sorted(live, key=lambda s: (-len(load[s]), s))
    quota = {s: base + (1 if i < extra else 0) for i, s in enumerate(order)}
    free: list[int] = []
    result: dict[int, str] = {}
    for s in live:
        keep, surplus = load[s][: quota[s]], load[s][quota[s] :]
        for shard in keep:
            result[shard] = s
        free.extend(surplus)
    free.extend(shard for shard in range(shards) if current.get(shard) not in load)
    held = {s: sum(1 for v in result.values() if v == s) for s in live}
    for shard in sorted(free):
        target = min(live, key=lambda s: (held[s] - quota[s], s))
        result[shard] = target
        held[target] += 1
    return result


def shards_by_owner(owners: Mapping[int, str]) -> dict[str, list[int]]:
    by: dict[str, list[int]] = {}
    for shard, owner in sorted(owners.items()):
        by.setdefault(owner, []).append(shard)
    return by
