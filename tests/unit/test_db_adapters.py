"""Protobuf Timestamps go to Postgres as the bytes their datetimes would (cronfleet.db.adapters)."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from psycopg.adapt import PyFormat, Transformer
from psycopg.pq import Format

from cronfleet.codec import proto
from cronfleet.db.adapters import ADAPTERS
from cronfleet.v1 import dispatch_pb2


@pytest.mark.parametrize(
    "ts",
    [
        Timestamp(seconds=1_764_998_415, nanos=164_821_999),  # nanoseconds cut, as to_datetime does
        Timestamp(seconds=946_684_800, nanos=0),  # Postgres's own epoch
        Timestamp(seconds=-86_400, nanos=500_000),  # before 1970
        Timestamp(seconds=253_402_300_799, nanos=999_999_000),  # 9999-12-31T23:59:59.999999
    ],
)
def test_a_timestamp_dumps_as_its_datetime_does(ts: Timestamp) -> None:
    as_timestamp = Transformer(ADAPTERS).get_dumper(ts, PyFormat.BINARY).dump(ts)
    as_datetime = Transformer().get_dumper(dt := proto.to_datetime(ts), PyFormat.BINARY).dump(dt)
    assert as_timestamp == as_datetime


def test_a_list_of_timestamps_and_nones_dumps_as_a_timestamptz_array() -> None:
    times = [Timestamp(seconds=1_764_998_415, nanos=1_000), None, Timestamp(seconds=0)]
    dumper = Transformer(ADAPTERS).get_dumper(times, PyFormat.BINARY)
    dts = [datetime(2025, 12, 6, 5, 20, 15, 1, tzinfo=UTC), None, datetime(1970, 1, 1, tzinfo=UTC)]
    reference = Transformer().get_dumper(dts, PyFormat.BINARY)
    assert dumper.oid == reference.oid
    assert dumper.dump(times) == reference.dump(dts)


def test_a_messages_own_timestamps_dump_too() -> None:
    """What the scheduler passes: the Timestamp fields of the events themselves."""
    event = dispatch_pb2.RunEvent()
    proto.set_time(event.at, 1_764_998_415.25)
    times = [event.at, None, event.scheduled_at]
    as_datetimes = [proto.to_datetime(event.at), None, proto.to_datetime(event.scheduled_at)]
    dumped = Transformer(ADAPTERS).get_dumper(times, PyFormat.BINARY).dump(times)
    assert dumped == Transformer().get_dumper(as_datetimes, PyFormat.BINARY).dump(as_datetimes)


def test_what_is_found_by_the_timestamptz_oid_still_takes_datetimes() -> None:
    """COPY with set_types, ranges and composites look a dumper up by oid."""
    oid = psycopg.adapters.types["timestamptz"].oid
    dumper = ADAPTERS.get_dumper_by_oid(oid, Format.BINARY)
    assert dumper is psycopg.adapters.get_dumper_by_oid(oid, Format.BINARY)


def test_set_time_is_timestamp_at_in_place() -> None:
    # timestamp_at is built on set_time: each is checked against the integers themselves.
    for reading, seconds, nanos in ((0.0, 0, 0), (1_764_998_415.25, 1_764_998_415, 250_000_000)):
        event = dispatch_pb2.RunEvent()
        proto.set_time(event.at, reading)
        assert (event.at.seconds, event.at.nanos) == (seconds, nanos)
        assert event.at == proto.timestamp_at(reading)
