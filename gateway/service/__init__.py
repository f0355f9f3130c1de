"""What the public API does, whatever the transport (gRPC or HTTP).

Each method takes the authenticated user and plain values and returns
records (``cronfleet.models``); gateway/grpc_api.py and gateway/http/ only
translate them with the codecs. Every write commits before the method
returns. One module per area; :class:`JobsService` is all of them.
"""

from __future__ import annotations

from gateway.service.accounts import Accounts, token_hash
from gateway.service.alerts import Alerts
from gateway.service.dead_letters import DeadLetters
from gateway.service.executions import Executions
from gateway.service.schedules import Schedules
from gateway.service.stats import StatsArea


class JobsService(Accounts, Alerts, DeadLetters, Executions, Schedules, StatsArea):
    """The whole service layer: accounts, alerts, jobs, executions, dead letters, schedules, stats."""


__all__ = ["JobsService", "token_hash"]
