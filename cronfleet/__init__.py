"""cronfleet: a distributed, cron-like job scheduler.

Users import the SDK from here: ``from cronfleet import Client, AsyncClient``.
The client is imported on first use: every role imports this package, and
none of them needs the client (a tenth of a second of each process's start).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cronfleet.client import AsyncClient, Client, ClientError

__all__ = ["AsyncClient", "Client", "ClientError"]


def __getattr__(name: str) -> object:
    if name in __all__:
        from cronfleet import client

        return getattr(client, name)
    raise AttributeError(f"module 'cronfleet' has no attribute {name!r}")
