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


async def test_s3_store_links_a_log_never_stored_to_one_empty_object(s3_server: str) -> None:
    """A silent run stores nothing; its presigned link opens the one empty
    object the workers keep (ensure_bucket makes it, and keeps it there)."""
    store = S3LogStore(s3_settings(s3_server, "logs-empty"))
    try:
        await store.ensure_bucket()
        await store.ensure_bucket()  # a second worker's start: still one, still empty
        key = store.key_for("owner", "job", 8, 1)
        assert store.location(key) == f"s3://logs-empty/{key}"
        url = await store.link(key, 8, empty=True)
        async with httpx.AsyncClient() as http:
            reply = await http.get(url)
        assert (reply.status_code, reply.text) == (200, "")
        assert "empty.log" in url and key not in url
        with pytest.raises(NotFound):
            await store.read(key)  # nothing stored for the run: the gateway reads it as empty
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


async def test_local_store_takes_a_finished_file_and_copies_a_live_one(tmp_path: Path) -> None:
    store = LocalLogStore(tmp_path / "logs", "http://gw:8080")
    live = tmp_path / "live.log"
    live.write_text("so far\n")
    key = store.key_for("o", "j", 4, 1)
    await store.put(key, live)  # a run still writing it: copied, left in place
    assert live.read_text() == "so far\n" and await store.read(key) == b"so far\n"
    live.write_text("so far\nand the end\n")
    await store.put(key, live, final=True)  # the run ended: moved in, over the live copy
    assert not live.exists() and await store.read(key) == b"so far\nand the end\n"
    # The job's folder removed behind the store's back (log retention, an
    # operator): the next finished log still lands.
    (tmp_path / "logs" / key).unlink()
    (tmp_path / "logs" / key).parent.rmdir()
    again = tmp_path / "again.log"
    again.write_text("again\n")
    key2 = store.key_for("o", "j", 5, 1)
    await store.put(key2, again, final=True)
    assert await store.read(key2) == b"again\n"
