"""Log stores against real backends: a directory, and an S3 API server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from cronfleet.errors import NotFound
from cronfleet.logstore import LocalLogStore, S3LogStore
from tests.helpers import s3_settings

pytestmark = pytest.mark.integration


async def test_s3_store_uploads_reads_and_presigns(s3_server: str, tmp_path: Path) -> None:
    spool = tmp_path / "out.log"
    spool.write_text("hello from s3\n")
    store = S3LogStore(s3_settings(s3_server, "logs-a"))
    try:
        await store.ensure_bucket()
        key = store.key_for("owner", "job", 7, 1)
        location = await store.put(key, spool)
        assert location == f"s3://logs-a/{key}"
        assert await store.read(key) == b"hello from s3\n"
        url = await store.link(key, 7)
        assert "X-Amz-Expires=60" in url or "Expires=" in url
        async with httpx.AsyncClient() as http:
            assert (await http.get(url)).text == "hello from s3\n"
        with pytest.raises(NotFound):
            await store.read("missing.log")
    finally:
        await store.close()


async def test_local_store_round_trip(tmp_path: Path) -> None:
    spool = tmp_path / "spool.log"
    spool.write_text("local\n")
    store = LocalLogStore(tmp_path / "logs", "http://gw:8080")
    key = store.key_for("o", "j", 3, 2)
    assert (await store.put(key, spool)).startswith("file://")
    assert await store.read(key) == b"local\n"
    assert await store.link(key, 3) == "http://gw:8080/api/v1/executions/3/logs"
