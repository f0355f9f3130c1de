"""cronfleet: a distributed, cron-like job scheduler.

Users import the SDK from here: ``from cronfleet import Client, AsyncClient``.
"""

from cronfleet.client import AsyncClient, Client, ClientError

__all__ = ["AsyncClient", "Client", "ClientError"]
