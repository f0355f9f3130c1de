"""What the service reports: a user's or a job's stats, the cluster, health."""

from __future__ import annotations

from pydantic import BaseModel

from gateway.http.schemas.common import time_field


class Spread(BaseModel):
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None


class RunsInMinuteReply(BaseModel):
    minute: str = time_field(required=True)
    runs: int


class StatsReply(BaseModel):
    runs: int
    succeeded: int
    failed: int
    success_rate: float | None
    duration_ms: Spread
    lateness_ms: Spread
    last: list[str]
    success_rate_last_hour: float | None
    jobs: dict[str, int]
    executions: dict[str, dict[str, int]]
    runs_per_minute: list[RunsInMinuteReply]


class SchedulerReply(BaseModel):
    id: str
    shards: list[int]
    address: str


class WorkerReply(BaseModel):
    id: str
    capacity: int
    running: int
    runtime: str
    stopping: bool  # asked to stop: takes nothing more, leaves when its runs end


class ClusterReply(BaseModel):
    leader: str
    epoch: int
    coordinators: list[str]
    schedulers: list[SchedulerReply]
    workers: list[WorkerReply]
    metrics: dict[str, str]
    health: dict[str, str]


class HealthReply(BaseModel):
    status: str
