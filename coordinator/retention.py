"""What is kept only for a while: idempotency keys (24 hours), alerts (30
days, once none of their deliveries is pending), login throttles (until
their bucket has refilled)."""

from __future__ import annotations

import structlog

from coordinator.fencing import fenced_transaction
from cronfleet.db import Database

log = structlog.get_logger()
IDEMPOTENCY_KEY_TTL_SECONDS = 24 * 3600
ALERT_TTL_SECONDS = 30 * 24 * 3600


async def prune(db: Database, epoch: int) -> int:
    async with fenced_transaction(db, epoch) as tx:
        pruned = await tx.execute("prune_idempotency_keys", {"ttl": IDEMPOTENCY_KEY_TTL_SECONDS})
        alerts = await tx.execute("prune_alerts", {"ttl": ALERT_TTL_SECONDS})
        throttles = await tx.execute("prune_throttles", {})
    if pruned or alerts or throttles:
        log.info("retention_pruned", idempotency_keys=pruned, alerts=alerts, throttles=throttles, epoch=epoch)
    return pruned + alerts + throttles
