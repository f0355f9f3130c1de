"""The peer bench's pure parts: lateness stats, ratios, pooling rounds, the table, the witness lines."""

from __future__ import annotations

import pytest

from bench.peers import witness
from bench.peers.figures import (
    Lateness,
    Measurement,
    format_table,
    percentile,
    ratio,
    results_document,
    summarise,
)


def test_percentile_is_the_nearest_rank_of_the_sorted_values() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # 100 .. 1, unsorted on purpose
    assert percentile(values, 50) == 51.0  # rank round(0.5 * 99) = 50 of 1..100
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_lateness_counts_early_runs_and_keeps_the_max() -> None:
    lat = Lateness.of([-2.0, 1.0, 3.0, 5.0, 400.0])
    assert (lat.n, lat.p50, lat.max, lat.early) == (5, 3.0, 400.0, 1)
    assert lat.p99 == 400.0
    assert "1 early" in lat.text()
    assert Lateness.of([1500.0]).text().startswith("p50 1.50 s")


def test_ratio_says_which_way_is_better() -> None:
    slower = ratio(900.0, 300.0, higher_is_better=False)  # cronfleet's p99 three times the peer's
    assert slower is not None and slower.value == pytest.approx(3.0) and not slower.better
    assert slower.text() == "x3.00 (worse)"
    faster = ratio(3000.0, 1000.0, higher_is_better=True)  # three times the peer's runs/s
    assert faster is not None and faster.better
    earlier = ratio(100.0, 400.0, higher_is_better=False)
    assert earlier is not None and earlier.better and earlier.value == pytest.approx(0.25)
    assert ratio(1.0, 0.0, higher_is_better=True) is None


def _runs() -> list[Measurement]:
    return [
        Measurement("cronfleet", "same_second", 1, 4, lateness_ms=[10.0, 20.0]),
        Measurement("apscheduler", "same_second", 1, 4, lateness_ms=[5.0, 6.0]),
        Measurement("cronfleet", "same_second", 2, 4, lateness_ms=[30.0, 40.0]),
        Measurement("apscheduler", "same_second", 2, 4, lateness_ms=[7.0, 8.0]),
        Measurement("cronfleet", "sustained_noop", 1, 100, rate=1000.0),
        Measurement("celery", "sustained_noop", 1, 100, rate=400.0),
        Measurement("cronfleet", "sustained_noop", 2, 100, rate=3000.0),
        Measurement("celery", "sustained_noop", 2, 100, rate=600.0),
        Measurement("celery", "sustained_noop", 3, 100, rate=500.0),
    ]


def test_rounds_pool_lateness_values_and_take_the_median_rate() -> None:
    by = {(s.system, s.workload): s for s in summarise(_runs())}
    pooled = by[("cronfleet", "same_second")]
    assert pooled.lateness is not None and pooled.lateness.n == 4 and pooled.lateness.max == 40.0
    assert pooled.rounds == 2
    assert by[("celery", "sustained_noop")].rate == 500.0
    assert by[("cronfleet", "sustained_noop")].rate == 2000.0
    assert by[("celery", "sustained_noop")].text() == "500 runs/s (400-600)"


def test_the_table_puts_cronfleet_first_and_each_peer_with_its_ratio() -> None:
    table = format_table(summarise(_runs()))
    lines = table.splitlines()
    assert lines[0].split() == ["workload", "system", "figure", "cronfleet", "÷", "system"]
    body = lines[2:]
    assert body[0].startswith("4 jobs due in the same second") and " cronfleet " in body[0]
    assert "apscheduler" in body[1] and "p99 x5.00 (worse)" in body[1]  # 40 ms vs 8 ms
    assert body[2].startswith("sustained no-op, 100 runs") and "cronfleet" in body[2]
    assert "celery" in body[3] and "runs/s x4.00 (better)" in body[3]  # 2,000 vs 500
    # columns line up: every row's system starts where the header's does
    col = lines[0].index("system")
    assert all(line[col:].split()[0] in {"cronfleet", "apscheduler", "celery"} for line in body)


def test_a_peer_without_cronfleet_measured_says_so() -> None:
    table = format_table(summarise([Measurement("celery", "sustained_process", 1, 10, rate=50.0)]))
    assert "(cronfleet not measured)" in table


def test_the_results_document_keeps_every_round_and_the_summaries() -> None:
    doc = results_document(_runs(), {"cores": 2}, {"celery": "prefork"})
    assert len(doc["measurements"]) == 9
    assert doc["configs"] == {"celery": "prefork"}
    lat = next(s for s in doc["summaries"] if s["system"] == "apscheduler")["lateness"]
    assert lat["p99"] == 8.0


def test_witness_lines_give_lateness_and_rate() -> None:
    lines = witness.parse("100.000000 100.250000000 100.260000000\n100.000000 99.990000000 100.0\nbroken\n")
    assert [round(v) for v in witness.lateness_ms(lines)] == [250, -10]
    runs = witness.parse("".join(f"0 {10 + i * 0.5} {10.1 + i * 0.5}\n" for i in range(5)))
    assert witness.rate(runs) == pytest.approx(5 / 2.1)  # first start 10.0, last end 12.1
    assert witness.rate([]) == 0.0


def test_the_machine_readings_go_into_the_figures_meta_and_a_title(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import machine, record

    assert machine.python_loop_ms(tries=1) > 0  # the readings themselves run here
    monkeypatch.setattr(
        machine, "reading", lambda: {"python": "3.11 (here)", "python_loop_ms": 65.4, "shell_fork_us": 210.6}
    )
    monkeypatch.setattr(record, "MACHINE", {})
    assert "python_loop_ms" not in record.meta()  # not read yet
    record.read_machine()
    meta = record.meta()
    assert (meta["python_loop_ms"], meta["shell_fork_us"]) == (65.4, 210.6)
    assert machine.title_line(meta) == "\nthe machine: a Python loop 65.4 ms, a shell's fork 210.6 us"
    assert machine.title_line({"at": "now"}) == ""  # a document from before the readings
