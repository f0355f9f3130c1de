"""How values that arrive as protobuf travel to Postgres without a detour.

A worker's events carry their times as protobuf Timestamps; turned into
datetimes only for psycopg to take them apart again, three a finished run,
they cost a busy scheduler 1.4 us each (0.5 us dumped straight: the same
bytes). Connections of :class:`cronfleet.db.Database` use ``ADAPTERS``.
"""

from __future__ import annotations

import struct

import psycopg
from google.protobuf.timestamp_pb2 import Timestamp
from psycopg.adapt import Dumper
from psycopg.pq import Format

_POSTGRES_EPOCH = 946_684_800  # 2000-01-01 in Unix seconds: where Postgres counts its microseconds from
_int64 = struct.Struct(">q").pack


class TimestampDumper(Dumper):
    """A Timestamp as a binary ``timestamptz``, to the microsecond (nanoseconds
    cut, as ``Timestamp.ToDatetime`` and ``proto.to_datetime`` do)."""

    format = Format.BINARY
    oid = psycopg.adapters.types["timestamptz"].oid

    def dump(self, obj: Timestamp) -> bytes:
        return _int64((obj.seconds - _POSTGRES_EPOCH) * 1_000_000 + obj.nanos // 1000)


# A copy of psycopg's global map as this module is imported (cronfleet
# registers nothing there). Registering a dumper with an oid also makes it
# the one found by that oid (COPY's set_types, ranges, composites): the
# datetime dumper is put back there, so those still take datetimes.
ADAPTERS = psycopg.adapt.AdaptersMap(psycopg.adapters)
_by_oid = ADAPTERS.get_dumper_by_oid(TimestampDumper.oid, Format.BINARY)
ADAPTERS.register_dumper(Timestamp, TimestampDumper)
ADAPTERS.register_dumper(None, _by_oid)
