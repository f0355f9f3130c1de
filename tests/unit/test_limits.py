"""Limits without I/O: bucket keys, the planned fire rate, the bounds of a
job's fields on the proto path too, page sizes, ids that cannot exist."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from cronfleet import rpc
from cronfleet.codec import jsonapi, proto
from cronfleet.errors import (
    InvalidArgument,
    InvalidSpec,
    NotFound,
    QuotaExceeded,
    RateQuotaExceeded,
    Throttled,
    TooLong,
)
from cronfleet.schedule import Timing, fires_in_a_minute
from cronfleet.v1 import jobs_pb2 as pb
from gateway.grpc_api import peer_address
from gateway.service.base import MAX_PAGE, page_size, parse_serial
from gateway.service.limits import AuthLimits, account_key, address_key

NOW = datetime(2026, 3, 4, 22, 30, 15, tzinfo=UTC)  # a Wednesday night


def test_bucket_keys() -> None:
    assert address_key("10.1.2.3") == "address:10.1.2.3"
    assert address_key("2001:db8::1") == address_key("2001:db8::ffff") == "address:2001:db8::/64"
    assert address_key("::ffff:10.1.2.3") == "address:10.1.2.3"
    assert account_key("ann@example.com") != account_key("bob@example.com")
    assert "ann" not in account_key("ann@example.com"), "only a hash is kept"
    assert (
        AuthLimits().account.describe()
        == "at most 10 failed logins or signups for one account per 15 minutes"
    )
    assert (
        AuthLimits().address.describe() == "at most 30 login and signup requests from one address per minute"
    )


@pytest.mark.parametrize(
    ("schedule", "rate"),
    [
        ("* * * * * *", 60),
        ("*/2 * * * * *", 30),
        ("0 * * * * *", 1),
        ("*/5 * * * *", 1),
        ("@every 90s", 1),
        ("@every 1s", 60),
        ("* * 9-17 * * MON-FRI", 60),  # created at night: its rate in office hours
        ("0,1,2 0 0 1 1 *", 3),
        (None, 0),
    ],
)
def test_fires_in_a_minute(schedule: str | None, rate: int) -> None:
    assert fires_in_a_minute(Timing(schedule, "UTC", anchor=NOW), NOW) == rate


def test_a_window_that_is_over_plans_nothing() -> None:
    over = Timing("* * * * * *", "UTC", start_at=NOW - timedelta(days=2), end_at=NOW - timedelta(days=1))
    assert fires_in_a_minute(over, NOW) == 0


def _spec(**fields: Any) -> pb.JobSpec:
    return pb.JobSpec(**({"name": "j", "command": "true"} | fields))


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"command": "echo \x00"}, "command"),
        ({"name": "n" * 201}, "name"),
        ({"image": "\x00"}, "image"),
        ({"timezone": "UTC\x00"}, "timezone"),
        ({"env": {"A": "\x00"}}, "env.A"),
        ({"max_concurrency": 2**30}, "max_concurrency"),
    ],
)
def test_the_grpc_path_has_the_same_bounds(fields: dict[str, Any], field: str) -> None:
    """A proto string may hold NUL and any length: JobSpec.validate refuses them too."""
    with pytest.raises(InvalidSpec) as err:
        proto.spec_from_proto(_spec(**fields)).validate()
    assert err.value.field == field


def test_non_finite_numbers_are_refused() -> None:
    for bad in (float("nan"), float("inf")):
        with pytest.raises(InvalidArgument):
            jsonapi.spec_from_json({"name": "j", "command": "true", "resources": {"cpus": bad}})
        with pytest.raises(InvalidSpec):
            proto.spec_from_proto(_spec(resources=pb.Resources(cpus=bad))).validate()


def test_page_size_is_clamped_and_ids_that_cannot_exist_are_not_found() -> None:
    assert (page_size(None), page_size(0), page_size(7), page_size(10**9)) == (100, 100, 7, MAX_PAGE)
    with pytest.raises(InvalidArgument):
        page_size(-1)
    assert parse_serial("42", "execution") == 42
    for bad in ("\u00b2", "\u0661", "9" * 30, "9223372036854775808", "-1", "", "1 "):
        with pytest.raises(NotFound):
            parse_serial(bad, "execution")


class _Peer:
    def __init__(self, peer: str) -> None:
        self._peer = peer

    def peer(self) -> str:
        return self._peer


def test_peer_address() -> None:
    assert peer_address(_Peer("ipv4:10.1.2.3:5555")) == "10.1.2.3"
    assert peer_address(_Peer("ipv6:[2001:db8::1]:5555")) == "2001:db8::1"
    assert peer_address(_Peer("unix:/run/x.sock")) is None


def test_grpc_status_codes() -> None:
    assert rpc.status_code(InvalidSpec("x")) == grpc.StatusCode.INVALID_ARGUMENT  # was INTERNAL
    assert rpc.status_code(TooLong("x")) == grpc.StatusCode.INVALID_ARGUMENT
    for refusal in (QuotaExceeded("x"), RateQuotaExceeded("x"), Throttled("x")):
        assert rpc.status_code(refusal) == grpc.StatusCode.RESOURCE_EXHAUSTED
