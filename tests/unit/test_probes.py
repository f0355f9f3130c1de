"""A role's metrics port also answers /healthz and /readyz (cronfleet.probes):
alive while the event loop beats, ready from the first beat until told to stop."""

from __future__ import annotations

import httpx

from cronfleet import metrics, probes


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def answers(addr: str, path: str) -> tuple[int, str]:
    reply = httpx.get(f"http://{addr}{path}", timeout=5)
    return reply.status_code, reply.text


def test_probes_follow_the_beat_and_the_stop() -> None:
    clock = Clock()
    health = probes.Probes(stale_after=10, clock=clock)
    addr = probes.serve("127.0.0.1:0", health)

    assert answers(addr, "/healthz") == (200, '{"status": "ok"}')  # starting
    assert answers(addr, "/readyz")[0] == 503
    health.beat()
    assert answers(addr, "/readyz") == (200, '{"status": "ready"}')
    clock.now += 11  # the loop stopped turning: wedged
    assert answers(addr, "/healthz") == (503, '{"status": "unavailable"}')
    assert answers(addr, "/readyz")[0] == 503
    health.beat()
    assert answers(addr, "/healthz")[0] == 200
    health.stop()  # SIGTERM: draining, alive but not ready
    assert answers(addr, "/healthz")[0] == 200
    assert answers(addr, "/readyz")[0] == 503


def test_every_other_path_serves_the_metrics() -> None:
    metrics.FIRES_CLAIMED.labels(shard="7").inc()
    addr = probes.serve("127.0.0.1:0", probes.Probes())
    for path in ("/metrics", "/"):
        status, text = answers(addr, path)
        assert status == 200 and 'cronfleet_scheduler_fires_claimed_total{shard="7"}' in text
