"""Which shards this scheduler may claim, as the coordinator last published."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

log = structlog.get_logger()


class ShardOwnership:
    """The shards handed to this scheduler and the epoch they were handed out at.

    Postgres has the last word on writes (the claim joins ``shard_owners`` at
    this epoch); this copy says where to look, and which runs' stops to tell
    workers (scheduler.cancels: telling twice is harmless), and is cleared the
    moment our etcd session is lost, since the coordinator may then give the
    shards away.
    """

    def __init__(self, scheduler_id: str, on_change: Callable[[], None]) -> None:
        self.scheduler_id = scheduler_id
        self.shards: frozenset[int] = frozenset()
        self.epoch = 0
        self._on_change = on_change

    def apply(self, shard_map: dict[str, Any]) -> None:
        """Take the published map ``{"epoch": n, "owners": {scheduler_id: [shard...]}}``."""
        mine = frozenset(shard_map.get("owners", {}).get(self.scheduler_id, []))
        epoch = int(shard_map.get("epoch", 0))
        if mine != self.shards or epoch != self.epoch:
            log.info("shards_changed", scheduler_id=self.scheduler_id, epoch=epoch, shards=len(mine))
            self.shards, self.epoch = mine, epoch
            self._on_change()

    def keep_only(self, shards: frozenset[int]) -> None:
        """Postgres says only ``shards`` are still ours at this epoch."""
        if shards != self.shards:
            self.shards = shards & self.shards
            self._on_change()

    def clear(self) -> None:
        self.apply({})

    def owns(self, shard: int) -> bool:
        return shard in self.shards
