"""What is kept only for a while: idempotency keys (24 hours)."""

from __future__ import annotations

import structlog

from coordinator.fencing import fenced_transaction
from cronfleet.db import Database

log = structlog.get_logger()
IDEMPOTENCY_KEY_TTL_SECONDS = 24 * 3600


async def prune(db: Database, epoch: int) -> int:
    async with fenced_transaction(db, epoch) as tx:
        pruned = await tx.execute("prune_idempotency_keys", {"ttl": IDEMPOTENCY_KEY_TTL_SECONDS})
    if pruned:
        log.info("idempotency_keys_pruned", count=pruned, epoch=epoch)
    return pruned
