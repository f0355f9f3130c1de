"""The HTTP gateway's hardened surface, served by uvicorn on loopback over a
real Postgres: 429 with Retry-After, 413 for every body (declared, chunked,
on any route), every string bounded with the field named, lists capped,
ids that cannot exist are 404, and quotas as API.md's errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from cronfleet.db import Database
from cronfleet.logstore import LocalLogStore
from cronfleet.v1 import jobs_pb2
from gateway.http import build_http_app
from gateway.http.common import MAX_BODY
from gateway.service import JobsService
from gateway.service.limits import AuthLimits, Quotas
from launch.devservices import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
async def base(db: Database, tmp_path: Path) -> AsyncIterator[str]:
    """A gateway's HTTP API (small limits) on a free loopback port."""
    service = JobsService(
        db,
        LocalLogStore(tmp_path / "logs", "http://gw"),
        shards=8,
        token_ttl=timedelta(hours=1),
        auth_limits=AuthLimits(account_failures=3, address_requests=8, address_window_seconds=3600),
        quotas=Quotas(jobs=4, runs_per_minute=2),
    )

    async def cluster() -> jobs_pb2.Cluster:
        return jobs_pb2.Cluster()

    async def ready() -> bool:
        return True

    app = build_http_app(service, cluster, ready)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )  # as gateway.node: X-Forwarded-For trusted from 127.0.0.1
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), task.exception()
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}/api/v1"
    server.should_exit = True
    await task


async def token(c: httpx.AsyncClient, email: str, address: str) -> str:
    forwarded = {"X-Forwarded-For": address}
    reply = await c.post(
        "/auth/signup", json={"name": "N", "email": email, "password": "password123"}, headers=forwarded
    )
    assert reply.status_code == 201, reply.text
    login = await c.post("/auth/login", json={"email": email, "password": "password123"}, headers=forwarded)
    return str(login.json()["token"])


def error(reply: httpx.Response) -> dict[str, Any]:
    body = reply.json()
    assert set(body) == {"error"}, body
    return dict(body["error"])


async def test_throttled_login_is_429_with_retry_after(base: str) -> None:
    async with httpx.AsyncClient(base_url=base) as c:
        await token(c, "ann@example.com", "10.0.0.1")
        for _ in range(3):
            bad = await c.post("/auth/login", json={"email": "ann@example.com", "password": "x" * 8})
            assert bad.status_code == 401 and error(bad)["message"] == "wrong email or password"
        unknown = await c.post("/auth/login", json={"email": "who@example.com", "password": "x" * 8})
        assert unknown.status_code == 401 and error(unknown) == error(bad), "no user enumeration"
        refused = await c.post("/auth/login", json={"email": "ann@example.com", "password": "password123"})
        assert refused.status_code == 429
        body = error(refused)
        assert body["code"] == "throttled" and body["field"] == "login_failures_per_account"
        assert int(refused.headers["Retry-After"]) == body["retry_after_seconds"] > 0


async def test_requests_per_address_follow_a_trusted_proxy(base: str) -> None:
    async with httpx.AsyncClient(base_url=base) as c:
        for i in range(4):  # 8 requests: signup and login each
            await token(c, f"u{i}@example.com", "203.0.113.7")
        login = {"email": "u0@example.com", "password": "password123"}
        refused = await c.post("/auth/login", json=login, headers={"X-Forwarded-For": "203.0.113.7"})
        assert refused.status_code == 429 and error(refused)["field"] == "auth_requests_per_address"
        other = await c.post("/auth/login", json=login, headers={"X-Forwarded-For": "203.0.113.8"})
        assert other.status_code == 200


async def test_quotas_over_http(base: str) -> None:
    async with httpx.AsyncClient(base_url=base) as c:
        c.headers["Authorization"] = f"Bearer {await token(c, 'ann@example.com', '10.0.0.2')}"
        job = (await c.post("/jobs", json={"name": "a", "command": "true", "schedule": "0 0 1 1 *"})).json()
        for _ in range(2):
            assert (await c.post(f"/jobs/{job['id']}/run")).status_code == 202
        rate = await c.post(f"/jobs/{job['id']}/run")
        assert rate.status_code == 429 and error(rate)["code"] == "quota_exceeded"
        assert error(rate)["field"] == "runs_per_minute" and int(rate.headers["Retry-After"]) > 0
        later = {"command": "true", "run_at": "2100-01-01T00:00:00Z"}  # one-offs: not a rate
        for i in range(3):
            assert (await c.post("/jobs", json={"name": f"j{i}", **later})).status_code == 201
        full = await c.post("/jobs", json={"name": "more", **later})
        assert full.status_code == 422 and error(full)["code"] == "quota_exceeded"
        assert error(full)["field"] == "jobs_per_user" and "Retry-After" not in full.headers


async def test_every_body_is_bounded(base: str) -> None:
    async with httpx.AsyncClient(base_url=base) as c:
        c.headers["Authorization"] = f"Bearer {await token(c, 'ann@example.com', '10.0.0.3')}"
        big = b"{" + b" " * MAX_BODY + b"}"
        for method, path, ctype in [
            ("POST", "/jobs", "application/json"),
            ("POST", "/jobs", "application/yaml"),
            ("POST", "/auth/signup", "application/json"),
            ("GET", "/jobs", "application/json"),  # a route that reads no body
            ("POST", "/me/webhook-secret", "application/json"),
        ]:
            reply = await c.request(method, path, content=big, headers={"Content-Type": ctype})
            assert reply.status_code == 413, (method, path, reply.text)
            assert error(reply)["code"] == "too_large"

        async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
            yield b'{"name": "x", "command": "'
            for _ in range(MAX_BODY // 65536 + 1):
                yield b"a" * 65536
            yield b'"}'

        reply = await c.post("/jobs", content=chunked(), headers={"Content-Type": "application/json"})
        assert reply.status_code == 413 and error(reply)["code"] == "too_large"
        many = {"jobs": [{"name": f"j{i}", "command": "true"} for i in range(101)]}
        assert error(await c.post("/jobs", json=many))["field"] == "jobs"
        just_under = json.dumps({"name": "x", "command": "true", "env": {"A": "b" * 1000}})
        assert (await c.post("/jobs", content=just_under)).status_code == 201


async def test_a_content_length_lie_cannot_pass_the_bound(base: str) -> None:
    """A body longer than it declares: the server reads what was declared and
    takes the rest as the next request, which is refused; nothing past the
    bound is ever read as a body."""
    host, port = base.split("//")[1].split("/")[0].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    body = b'{"email": "a@b.c", "password": "p"}' + b"x" * (2 * MAX_BODY)
    writer.write(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
        b"Content-Length: 36\r\n\r\n" + body
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readline(), 10)
    assert head.split()[1] in (b"401", b"400"), head  # the declared 36 bytes, judged as a login
    writer.close()
    # A length that is no number is refused outright.
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: gw\r\nContent-Length: 9999999999999\r\n\r\n")
    await writer.drain()
    head = await asyncio.wait_for(reader.readline(), 10)
    assert head.split()[1] == b"413", head
    writer.close()


@pytest.mark.parametrize(
    ("job", "field", "status"),
    [
        ({"name": "n" * 201}, "name", 422),
        ({"command": "c" * (64 * 1024 + 1)}, "command", 422),
        ({"command": "echo \u0000"}, "command", 400),
        ({"env": {"A": "v" * (32 * 1024 + 1)}}, "env.A", 422),
        ({"env": {"A" * 257: "v"}}, "env", 422),
        ({"env": {f"V{i}": "v" for i in range(201)}}, "env", 422),
        ({"image": "i" * 513}, "image", 422),
        ({"schedule": "* " * 600}, "schedule", 422),
        ({"timezone": "Z" * 65}, "timezone", 422),
        ({"steps": [{"run": "true"}] * 101, "command": None}, "steps", 422),
        ({"steps": [{"name": "s" * 201, "run": "true"}], "command": None}, "steps[0].name", 422),
        ({"http": {"url": "https://e.com/" + "p" * 2048}, "command": None}, "http.url", 422),
        (
            {"http": {"url": "https://e.com", "headers": {"X": "v" * 8193}}, "command": None},
            "http.headers.X",
            422,
        ),
        (
            {"http": {"url": "https://e.com", "headers": {"X": "a\r\nB: c"}}, "command": None},
            "http.headers.X",
            422,
        ),
        ({"http": {"url": "https://[::1"}, "command": None}, "http.url", 422),
        ({"http": {"url": f"https://{'a' * 64}.com"}, "command": None}, "http.url", 422),
        ({"notify": [{"webhook": "https://a..b/x"}]}, "notify[0].webhook", 422),
        ({"max_concurrency": 10**30}, "max_concurrency", 422),
        ({"resources": {"cpus": 1e308}}, "resources.cpus", 422),
        ({"retry": {"backoff_seconds": 1e300, "max_backoff_seconds": 1e301}}, "retry.backoff_seconds", 422),
        ({"notify": [{"webhook": "https://e.com/" + "w" * 2048}]}, "notify[0].webhook", 422),
        ({"after": [{"job_id": "00000000-0000-0000-0000-000000000000"}] * 51}, "after", 422),
        ({"run_at": "9999-12-31T23:00:00-05:00"}, "run_at", 400),
        ({"run_at": "9500-01-01T00:00:00Z"}, "run_at", 422),
        ({"start_at": "0001-01-01T00:00:00Z", "schedule": "* * * * *"}, "start_at", 422),
        ({"schedule": "@every 99999999999999999999s"}, "schedule", 422),
    ],
)
async def test_every_job_field_is_bounded(base: str, job: dict[str, object], field: str, status: int) -> None:
    async with httpx.AsyncClient(base_url=base) as c:
        c.headers["Authorization"] = f"Bearer {await token(c, 'ann@example.com', '10.0.0.4')}"
        body = {k: v for k, v in ({"name": "j", "command": "true"} | job).items() if v is not None}
        reply = await c.post("/jobs", json=body)
        assert (reply.status_code, error(reply)["field"]) == (status, field), reply.text[:300]


async def test_malformed_bodies_and_ids_are_4xx(base: str) -> None:
    async with httpx.AsyncClient(base_url=base) as c:
        c.headers["Authorization"] = f"Bearer {await token(c, 'ann@example.com', '10.0.0.5')}"
        surrogate = await c.post("/jobs", content='{"name": "j", "command": "echo \\ud800"}')
        assert (surrogate.status_code, error(surrogate)["field"]) == (400, "command")
        deep = "[" * 100_000 + "]" * 100_000
        assert (await c.post("/jobs", content=deep)).status_code == 400
        deep_yaml = "jobs: " + "[" * 5_000 + "]" * 5_000
        yaml_type = {"Content-Type": "application/yaml"}
        assert (await c.post("/jobs", content=deep_yaml, headers=yaml_type)).status_code == 400
        nan = '{"name": "j", "command": "true", "priority": NaN}'
        assert (await c.post("/jobs", content=nan)).status_code == 400
        for bad in ("\u00b2", "99999999999999999999999", "-1", "1e3"):
            assert (await c.get(f"/executions/{bad}")).status_code == 404
            assert (await c.post(f"/dead-letters/{bad}/replay")).status_code == 404
        for after in ("9999-12-31T23:59:59Z", "0001-01-01T00:00:01Z"):
            preview = await c.post("/schedules/preview", json={"schedule": "* * * * * *", "after": after})
            assert (preview.status_code, error(preview)["field"]) == (422, "after")
        job = (await c.post("/jobs", json={"name": "b", "command": "true", "schedule": "0 0 1 1 *"})).json()
        early = {"from": "0001-01-01T00:00:00Z", "to": "2020-01-01T00:00:00Z"}
        backfill = await c.post(f"/jobs/{job['id']}/backfill", json=early)
        assert (backfill.status_code, error(backfill)["field"]) == (422, "from")
        assert (await c.get("/jobs", params={"page_token": "bm90IG91cnM="})).status_code == 400
        assert (await c.get("/jobs", params={"page_token": "W1siMjAyMCIsICJ4Il1d"})).status_code == 400
        assert (await c.get("/executions", params={"page_token": "WzFlOTld"})).status_code == 400
        assert (await c.get("/jobs", params={"q": "\u0000"})).status_code == 422
        assert (await c.get("/executions", params={"worker_id": "w" * 201})).status_code == 422
        for login in (
            '{"email": "a\\ud800@b.c", "password": "p"}',
            '{"email": "a@b.c", "password": "\\ud800"}',
        ):
            assert (await c.post("/auth/login", content=login)).status_code == 401
        signup = await c.post("/auth/signup", json={"name": 5, "email": "x@y.z", "password": "password123"})
        assert (signup.status_code, error(signup)["field"]) == (400, "name")
        patch = await c.patch("/me", json={"name": "n" * 201})
        assert (patch.status_code, error(patch)["field"]) == (422, "name")


async def test_lists_are_capped(base: str) -> None:
    async with httpx.AsyncClient(base_url=base) as c:
        c.headers["Authorization"] = f"Bearer {await token(c, 'ann@example.com', '10.0.0.6')}"
        for path in ("/jobs", "/executions", "/dead-letters", "/alerts"):
            assert (await c.get(path, params={"limit": 100_000})).status_code == 200, path
            assert (await c.get(path, params={"limit": -1})).status_code == 400, path
