"""The lock-free metric kinds a worker moves per run read as prometheus_client's own would."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cronfleet.metrics import LoopCounter, LoopHistogram

BUCKETS = (0.001, 0.01, 0.1, 1)
VALUES = (0.0005, 0.001, 0.0011, 0.01, 0.5, 1, 7, 0.0)


def _samples(text: bytes) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
    """Every sample but the _created ones (the loop kinds keep no creation time)."""
    return {
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
        if not s.name.endswith("_created")
    }


def test_a_loop_histogram_exports_what_a_prometheus_histogram_would() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    loop = LoopHistogram("t_lateness_seconds", "doc", BUCKETS, registry=ours)
    reference = Histogram("t_lateness_seconds", "doc", buckets=BUCKETS, registry=theirs)
    for value in VALUES:  # bounds themselves included: a bucket is "less than or equal"
        loop.observe(value)
        reference.observe(value)
    assert _samples(generate_latest(ours)) == _samples(generate_latest(theirs))


def test_a_loop_counter_exports_what_a_prometheus_counter_would() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    loop = LoopCounter("t_runs_total", "doc", ["status"], registry=ours)
    reference = Counter("t_runs_total", "doc", ["status"], registry=theirs)
    for status in ("succeeded", "failed", "succeeded"):
        loop.inc(status)
        reference.labels(status).inc()
    assert _samples(generate_latest(ours)) == _samples(generate_latest(theirs))
    assert loop.value("succeeded") == 2 and loop.value("lost") == 0
    plain, plain_ref = (
        LoopCounter("t_cold_total", "doc", registry=ours),
        Counter("t_cold_total", "doc", registry=theirs),
    )
    plain.inc()
    plain_ref.inc()
    assert _samples(generate_latest(ours)) == _samples(generate_latest(theirs))


def test_a_plain_loop_counter_reads_zero_before_its_first_increase() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    LoopCounter("t_cold_total", "doc", registry=ours)
    Counter("t_cold_total", "doc", registry=theirs)
    assert _samples(generate_latest(ours)) == _samples(generate_latest(theirs))
    assert ("t_cold_total", (), 0.0) in _samples(generate_latest(ours))


def test_a_loop_counter_refuses_what_prometheus_client_refuses() -> None:
    counter = LoopCounter("t_refused_total", "doc", ["status"], registry=CollectorRegistry())
    with pytest.raises(ValueError, match="labels"):
        counter.inc()
    with pytest.raises(ValueError, match="labels"):
        counter.inc("succeeded", "extra")
    with pytest.raises(ValueError, match="only goes up"):
        counter.inc("succeeded", amount=-1)
    assert counter.value("succeeded") == 0


def test_a_loop_histogram_puts_nan_in_no_bucket_and_refuses_unordered_bounds() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    loop = LoopHistogram("t_nan_seconds", "doc", BUCKETS, registry=ours)
    reference = Histogram("t_nan_seconds", "doc", buckets=BUCKETS, registry=theirs)
    for value in (0.5, float("nan")):
        loop.observe(value)
        reference.observe(value)
    counts = {s for s in _samples(generate_latest(ours)) if not s[0].endswith("_sum")}
    assert counts == {s for s in _samples(generate_latest(theirs)) if not s[0].endswith("_sum")}
    with pytest.raises(ValueError, match="increasing"):
        LoopHistogram("t_unordered_seconds", "doc", (1, 0.5), registry=CollectorRegistry())
