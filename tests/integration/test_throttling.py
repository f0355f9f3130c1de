"""Login and signup throttling on a real Postgres: per account (failures)
and per client address (every attempt), shared by every gateway, constant
time and one message for an unknown email and a wrong password."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from cronfleet.db import Database
from cronfleet.errors import Conflict, Throttled, Unauthenticated
from cronfleet.logstore import LocalLogStore
from gateway.service import JobsService, accounts
from gateway.service.limits import AuthLimits

pytestmark = pytest.mark.integration


def gateway(db: Database, tmp_path: Path, **limits: float) -> JobsService:
    """One gateway replica over ``db`` with these throttles."""
    logs = LocalLogStore(tmp_path / "logs", "http://gw")
    throttles = AuthLimits(**limits)  # type: ignore[arg-type]
    return JobsService(db, logs, shards=8, token_ttl=timedelta(hours=1), auth_limits=throttles)


async def test_failed_logins_per_account_then_429_naming_the_limit(db: Database, tmp_path: Path) -> None:
    svc = gateway(db, tmp_path, account_failures=3, account_window_seconds=600)
    await svc.signup("Ann", "ann@example.com", "password123")
    for _ in range(3):
        with pytest.raises(Unauthenticated):
            await svc.login("ann@example.com", "wrong-password")
    with pytest.raises(Throttled) as err:
        await svc.login("ann@example.com", "password123")  # the right one too, while throttled
    assert err.value.field == "login_failures_per_account"
    assert err.value.http_status == 429 and err.value.code == "throttled"
    assert "at most 3 failed logins or signups for one account per 10 minutes" in str(err.value)
    # One token comes back every 200 s: that is what Retry-After says.
    assert 150 <= err.value.retry_after <= 200
    # Another account is not affected.
    await svc.signup("Bob", "bob@example.com", "password123")
    await svc.login("bob@example.com", "password123")


async def test_successes_do_not_count(db: Database, tmp_path: Path) -> None:
    svc = gateway(db, tmp_path, account_failures=2)
    await svc.signup("Ann", "ann@example.com", "password123")
    with pytest.raises(Unauthenticated):
        await svc.login("ann@example.com", "wrong-password")
    for _ in range(5):
        await svc.login("ann@example.com", "password123")
    with pytest.raises(Unauthenticated):
        await svc.login("ann@example.com", "wrong-password")
    with pytest.raises(Throttled):
        await svc.login("ann@example.com", "wrong-password")


async def test_unknown_email_is_refused_and_throttled_like_a_known_one(db: Database, tmp_path: Path) -> None:
    svc = gateway(db, tmp_path, account_failures=2)
    await svc.signup("Ann", "ann@example.com", "password123")
    refusals = []
    for email in ("ann@example.com", "nobody@example.com"):
        for _ in range(2):
            with pytest.raises(Unauthenticated) as err:
                await svc.login(email, "wrong-password")
            refusals.append((err.value.code, err.value.message, err.value.field))
        with pytest.raises(Throttled) as throttled:
            await svc.login(email, "wrong-password")
        refusals.append((throttled.value.code, throttled.value.message[:40], throttled.value.field))
    assert refusals[:3] == refusals[3:], "the same answers whether or not the account exists"
    assert refusals[0] == ("unauthenticated", "wrong email or password", None)


async def test_an_unknown_email_costs_a_password_check(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Constant time: an unknown email is checked against a dummy hash, so it
    takes what a wrong password takes (one argon2 verify)."""
    svc = gateway(db, tmp_path)
    await svc.signup("Ann", "ann@example.com", "password123")
    checked: list[str] = []
    real = accounts._verify

    async def spy(password_hash: str, password: str) -> bool:
        checked.append(password_hash)
        return await real(password_hash, password)

    monkeypatch.setattr(accounts, "_verify", spy)
    for email in ("ann@example.com", "nobody@example.com"):
        with pytest.raises(Unauthenticated):
            await svc.login(email, "wrong-password")
    assert len(checked) == 2 and checked[1] == accounts._dummy_hash()
    assert checked[0].split("$")[:4] == checked[1].split("$")[:4], "same algorithm and cost"


async def test_requests_per_address_and_ipv6_by_its_64(db: Database, tmp_path: Path) -> None:
    svc = gateway(db, tmp_path, address_requests=3, address_window_seconds=60)
    await svc.signup("Ann", "ann@example.com", "password123", address="10.1.2.3")
    await svc.login("ann@example.com", "password123", address="10.1.2.3")
    with pytest.raises(Unauthenticated):
        await svc.login("ann@example.com", "nope-nope", address="10.1.2.3")
    with pytest.raises(Throttled) as err:
        await svc.login("ann@example.com", "password123", address="10.1.2.3")
    assert err.value.field == "auth_requests_per_address" and 1 <= err.value.retry_after <= 20
    with pytest.raises(Throttled):
        await svc.signup("Bob", "bob@example.com", "password123", address="10.1.2.3")
    await svc.login("ann@example.com", "password123", address="10.1.2.4")  # another address
    for host in ("2001:db8::1", "2001:db8::2", "2001:db8::ffff"):
        await svc.login("ann@example.com", "password123", address=host)
    with pytest.raises(Throttled):  # the same /64
        await svc.login("ann@example.com", "password123", address="2001:db8::3")
    await svc.login("ann@example.com", "password123", address="2001:db8:0:1::1")


async def test_replicas_share_the_counts(db: Database, tmp_path: Path) -> None:
    """Two gateways on one database: the limit holds across both (Postgres
    keeps the buckets), which an in-process counter would not."""
    one = gateway(db, tmp_path, account_failures=4)
    two = gateway(db, tmp_path, account_failures=4)
    await one.signup("Ann", "ann@example.com", "password123")
    for svc in (one, two, one, two):
        with pytest.raises(Unauthenticated):
            await svc.login("ann@example.com", "wrong-password")
    for svc in (one, two):
        with pytest.raises(Throttled):
            await svc.login("ann@example.com", "password123")


async def test_signup_of_a_taken_email_is_409_and_counts_as_a_failure(db: Database, tmp_path: Path) -> None:
    svc = gateway(db, tmp_path, account_failures=2)
    await svc.signup("Ann", "ann@example.com", "password123")
    for _ in range(2):
        with pytest.raises(Conflict) as err:
            await svc.signup("Eve", "ANN@example.com", "password456")
        assert (err.value.field, err.value.message) == ("email", "an account with this email exists")
    with pytest.raises(Throttled):
        await svc.signup("Eve", "ann@example.com", "password456")


async def test_a_change_of_email_is_throttled_like_a_signup(db: Database, tmp_path: Path) -> None:
    """PATCH /me with an email that is taken says so (409): an account could
    otherwise test emails at full speed."""
    svc = gateway(db, tmp_path, account_failures=2, address_requests=100)
    await svc.signup("Ann", "ann@example.com", "password123")
    await svc.signup("Eve", "eve@example.com", "password123")
    eve = await svc.authenticate((await svc.login("eve@example.com", "password123"))[0])
    for _ in range(2):
        with pytest.raises(Conflict):
            await svc.update_me(eve, None, "ann@example.com", None, address="10.9.9.9")
    with pytest.raises(Throttled) as err:
        await svc.update_me(eve, None, "ann@example.com", None, address="10.9.9.9")
    assert err.value.field == "login_failures_per_account"
    await svc.update_me(eve, "Eve B.", "eve@example.com", None)  # her own email: no attempt


async def test_refilled_buckets_are_pruned(db: Database, database_url: str, tmp_path: Path) -> None:
    svc = gateway(db, tmp_path, account_failures=5, address_requests=5)
    with pytest.raises(Unauthenticated):
        await svc.login("ann@example.com", "wrong-password", address="10.0.0.1")
    assert await db.execute("prune_throttles") == 0, "not refilled yet"
    with psycopg.connect(database_url, autocommit=True) as conn:  # as if a day had passed
        conn.execute("UPDATE throttles SET updated_at = updated_at - interval '1 day'")
    assert await db.execute("prune_throttles") == 2
