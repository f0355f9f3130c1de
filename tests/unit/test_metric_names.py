"""Metric names are part of the contract operators build dashboards on."""

from __future__ import annotations

from prometheus_client.metrics import MetricWrapperBase

from cronfleet import metrics

# Gauges whose value is a state, not a quantity with a unit.
STATES = {"cronfleet_coordinator_leader", "cronfleet_coordinator_epoch", "cronfleet_coordinator_members"}
UNITS = ("_seconds", "_runs", "_fires", "_containers", "_credits", "_shards_owned")


def test_every_metric_has_the_prefix_and_says_its_unit() -> None:
    kinds = (MetricWrapperBase, metrics.LoopHistogram, metrics.LoopCounter)
    families = [next(iter(v.describe())) for v in vars(metrics).values() if isinstance(v, kinds)]
    assert len(families) >= 20
    for f in families:
        assert f.name.startswith("cronfleet_"), f.name
        if f.type == "counter":
            continue  # exposed as NAME_total
        assert f.name.endswith(UNITS) or f.name in STATES, f"{f.name} names no unit"


def test_lateness_buckets_run_from_half_a_millisecond_to_a_minute() -> None:
    buckets = metrics.LATENESS_BUCKETS
    assert buckets[0] == 0.0005 and buckets[-1] == 60 and list(buckets) == sorted(buckets)
    assert metrics.FIRE_LATENESS.upper_bounds[:-1] == list(buckets)  # +Inf last
