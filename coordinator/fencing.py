"""Every write the leader makes carries its epoch (the leader key's create
revision). A deposed leader that wakes up, from a pause or a partition,
finds its writes refused."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from cronfleet.db import Database, Session
from cronfleet.errors import CronfleetError


class Fenced(CronfleetError):
    """A newer coordinator epoch has written to Postgres: we are not leader."""

    code = "fenced"


@contextlib.asynccontextmanager
async def fenced_transaction(db: Database, epoch: int) -> AsyncIterator[Session]:
    """A transaction that first claims ``epoch`` as the newest; raises
    :class:`Fenced` (writing nothing) when a newer one has been claimed. The
    claim locks the epoch row, so a newer leader waits for us to commit."""
    async with db.transaction() as tx:
        if await tx.fetch_one("claim_epoch", {"epoch": epoch}) is None:
            raise Fenced(f"epoch {epoch} is stale")
        yield tx
