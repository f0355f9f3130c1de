"""The memory scenario's pure parts: the slope of resident sizes, a role's figures."""

from __future__ import annotations

import pytest

from bench.memory import resident, slope_per_minute


def test_slope_is_megabytes_per_minute_and_resident_takes_the_second_half() -> None:
    assert slope_per_minute([(0.0, 100.0), (30.0, 101.0), (60.0, 102.0)]) == pytest.approx(2.0)
    assert slope_per_minute([(5.0, 100.0)]) == 0.0
    assert slope_per_minute([(5.0, 100.0), (5.0, 101.0)]) == 0.0
    samples = [(float(t), 100.0 + (t if t < 30 else 30)) for t in range(0, 60, 2)]  # grows, then flat
    r = resident(samples)
    assert (r.start_mb, r.end_mb, r.peak_mb) == (100.0, 130.0, 130.0)
    assert r.slope_mb_per_min == pytest.approx(0.0)
    assert "MB/min" in r.text()
    with pytest.raises(ValueError):
        resident([])
