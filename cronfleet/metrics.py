"""Every Prometheus metric cronfleet exports, in one place (README, Metrics).

Each process serves its own registry (``prometheus_client``'s default) on
``CRONFLEET_METRICS_ADDR`` (:mod:`cronfleet.probes`); a role only moves the metrics of its own rooms,
so a worker's page carries worker figures and the process's own
(``process_*``, ``python_*``). Names carry the ``cronfleet_`` prefix and
their unit; labels are bounded (shard numbers, statuses, roles, routes).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

# Lateness from half a millisecond (a process run released on time) to a
# minute (a misfire's grace).
LATENESS_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
)  # fmt: skip
DURATION_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600)
STATEMENT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
BATCH_BUCKETS = (0, 1, 5, 10, 50, 100, 250, 500, 1000, 2000, 5000)


class LoopHistogram:
    """A histogram observed from one thread only (a role's event loop): a
    plain count per bucket, no lock. prometheus_client's Histogram takes a
    lock for its sum and one for the bucket, and walks its bounds in Python:
    2.3 us an observation here, against 0.2, and a worker makes two a run.
    Exported by the same registry, read by its thread as a collector: a
    scrape may catch an observation in the buckets and not yet in the sum
    or the other way round, as prometheus_client's own, which reads its
    values one by one, may. (The copies below are atomic because CPython's
    GIL is held through them; a free-threaded build would need a lock.)"""

    def __init__(
        self, name: str, documentation: str, buckets: Sequence[float], registry: CollectorRegistry = REGISTRY
    ) -> None:
        bounds = [float(b) for b in buckets if b != float("inf")]
        if bounds != sorted(bounds):
            raise ValueError(f"{name}: buckets must be in increasing order")
        self.name, self.documentation = name, documentation
        self.upper_bounds = [*bounds, float("inf")]
        # Each bound as prometheus_client writes it (0.0005, 60.0, 1e+06, +Inf).
        self._les = [floatToGoString(b) for b in self.upper_bounds]  # type: ignore[no-untyped-call]
        self._counts = [0] * len(self.upper_bounds)  # per bucket, not cumulative
        self._sum = 0.0
        registry.register(self)

    def observe(self, amount: float) -> None:
        self._sum += amount
        if amount == amount:  # NaN is in no bucket, as with prometheus_client
            self._counts[bisect.bisect_left(self.upper_bounds, amount)] += 1  # le: the first bound >= it

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(self.name, self.documentation)

    def collect(self) -> Iterator[Metric]:
        counts, total = self._counts.copy(), self._sum  # copies are atomic under the GIL
        family = HistogramMetricFamily(self.name, self.documentation)
        cumulative, buckets = 0, []
        for le, count in zip(self._les, counts, strict=True):
            cumulative += count
            buckets.append((le, cumulative))
        family.add_metric([], buckets, total)
        yield family


class LoopCounter:
    """A counter (by label values, if any) increased from one thread only: a
    plain number, no lock (see LoopHistogram; 0.9 us an increase with
    prometheus_client's Counter, a lock and a child looked up by its labels)."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, list(labelnames)
        # Without labels its one series is there from the start, at 0, as
        # prometheus_client's is (a series first seen at 1 hides that increase).
        self._values: dict[tuple[str, ...], float] = {} if labelnames else {(): 0.0}
        registry.register(self)

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        if labels not in self._values:  # checked once a series, not every increase
            if len(labels) != len(self.labelnames):
                raise ValueError(f"{self.name} takes labels {self.labelnames}, not {labels}")
        if amount < 0:
            raise ValueError(f"{self.name}: a counter only goes up, not by {amount}")
        self._values[labels] = self._values.get(labels, 0.0) + amount

    def value(self, *labels: str) -> float:
        return self._values.get(labels, 0.0)

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, value in self._values.copy().items():  # atomic under the GIL
            family.add_metric(list(labels), value)
        yield family


# ---------------------------------------------------------------- scheduler
FIRES_CLAIMED = Counter(
    "cronfleet_scheduler_fires_claimed_total", "Fires claimed from the schedule table, by shard", ["shard"]
)
CLAIM_BATCH = Histogram(
    "cronfleet_scheduler_claim_batch_fires", "Fires per claim statement", buckets=BATCH_BUCKETS
)
CLAIMS_FENCED = Counter(
    "cronfleet_scheduler_claims_fenced_total",
    "Claims Postgres refused: our shards had gone to another scheduler at a newer epoch",
)
CLAIM_DURATION = Histogram(
    "cronfleet_scheduler_claim_duration_seconds",
    "Time of one claim transaction (select, advance, insert)",
    buckets=STATEMENT_BUCKETS,
)
QUEUE_DEPTH = Gauge("cronfleet_scheduler_dispatch_queue_runs", "Runs claimed, waiting for a worker")
QUEUE_OLDEST = Gauge(
    "cronfleet_scheduler_dispatch_oldest_fire_age_seconds",
    "How far past its fire time the oldest queued run is (0 when none is due)",
)
ASSIGNMENTS_SENT = Counter("cronfleet_scheduler_assignments_sent_total", "Runs handed to workers")
WORKER_CREDITS = Gauge(
    "cronfleet_scheduler_worker_credits", "Runs each connected worker has room for", ["worker"]
)
SHARDS_OWNED = Gauge("cronfleet_scheduler_shards_owned", "Shards this scheduler owns now")

# ------------------------------------------------------------------- worker
# Moved once or twice a run, on the worker's loop: the lock-free kinds above.
RUNS_FINISHED = LoopCounter(
    "cronfleet_worker_runs_total", "Runs ended on this worker, by final status", ["status"]
)
FIRE_LATENESS = LoopHistogram(
    "cronfleet_worker_fire_lateness_seconds",
    "Real start minus fire time, measured as each run is released",
    buckets=LATENESS_BUCKETS,
)
RUN_DURATION = LoopHistogram(
    "cronfleet_worker_run_duration_seconds", "Start to end of each run", buckets=DURATION_BUCKETS
)
RUNNING = Gauge("cronfleet_worker_running_runs", "Runs started and not ended")
ARMED = Gauge("cronfleet_worker_armed_runs", "Runs held for a fire time not yet reached")
CAPACITY = Gauge("cronfleet_worker_capacity_runs", "Runs this worker takes at once (its credit)")
COLD_STARTS = LoopCounter("cronfleet_worker_cold_starts_total", "Runs that found nothing warm to start in")
IMAGE_PULLS = Counter(
    "cronfleet_worker_image_pulls_total", "Image pulls by this worker, by result (pulled, failed)", ["result"]
)
IMAGE_PULL_DURATION = Histogram(
    "cronfleet_worker_image_pull_duration_seconds",
    "Time of each image pull, failed or not",
    buckets=DURATION_BUCKETS,
)
LOG_UPLOAD_FAILURES = Counter(
    "cronfleet_worker_log_upload_failures_total", "Run logs that could not be stored"
)
POOL_IDLE = Gauge("cronfleet_worker_pool_idle_containers", "Warm containers ready for a run (docker)")

# -------------------------------------------------------------- coordinator
LEADER = Gauge("cronfleet_coordinator_leader", "1 while this coordinator leads, else 0")
EPOCH = Gauge("cronfleet_coordinator_epoch", "The fencing epoch of this coordinator's term (0: not leading)")
MEMBERS = Gauge("cronfleet_coordinator_members", "Live members the leader sees, by role", ["role"])
LOGS_REMOVED = Counter(
    "cronfleet_coordinator_logs_removed_total",
    "Run logs removed: their owner passed the log-bytes-kept quota",
)
SHARD_MOVES = Counter("cronfleet_coordinator_shard_moves_total", "Shards given to another scheduler")
RUNS_LOST = Counter(
    "cronfleet_coordinator_runs_declared_lost_total", "Runs of vanished workers declared lost"
)
ALERT_DELIVERIES = Counter(
    "cronfleet_coordinator_alert_deliveries_total",
    "Tries of alert deliveries by outcome: delivered, retried (later), failed (given up or refused)",
    ["outcome"],
)
ALERT_DELIVERY_DURATION = Histogram(
    "cronfleet_coordinator_alert_delivery_duration_seconds",
    "How long one try of an alert delivery took",
    buckets=STATEMENT_BUCKETS + (5, 10, 30),
)

# ------------------------------------------------------------------ gateway
HTTP_DURATION = Histogram(
    "cronfleet_http_request_duration_seconds",
    "HTTP API requests, by route template, method and status",
    ["route", "method", "status"],
    buckets=STATEMENT_BUCKETS + (5, 10),
)
