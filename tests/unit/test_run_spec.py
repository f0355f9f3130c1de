"""What a run's environment says of its fire: $CRONFLEET_SCHEDULED_AT (worker.runtime.RunSpec)."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from worker.runtime import RunSpec


@pytest.mark.parametrize(
    ("seconds", "nanos", "said"),
    [
        (1_764_676_800, 0, "2025-12-02T12:00:00Z"),
        (1_764_676_800, 250_000_000, "2025-12-02T12:00:00.250Z"),
        (1_764_676_800, 999_999_999, "2025-12-02T12:00:00.999Z"),  # cut, not rounded up a second
        (1_764_676_800, 1_000, "2025-12-02T12:00:00.000Z"),  # a microsecond: a fraction all the same
        (1_764_676_800, 999, "2025-12-02T12:00:00Z"),  # under a microsecond: none
        (-1, 0, "1969-12-31T23:59:59Z"),
    ],
)
def test_the_fire_is_said_in_rfc3339_utc_to_the_millisecond(seconds: int, nanos: int, said: str) -> None:
    spec = RunSpec(1, "job", 1, Path("/spool/1-1/output.log"), fire=Timestamp(seconds=seconds, nanos=nanos))
    assert spec.scheduled_at == said


def test_a_run_without_a_fire_says_none() -> None:
    assert RunSpec(1, "job", 1, Path("/spool/1-1/output.log")).scheduled_at == ""
