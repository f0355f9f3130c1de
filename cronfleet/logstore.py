"""Where run output goes: a local directory (default) or S3.

Workers ``put`` a finished run's spool file and report the stored location
(``file://...`` or ``s3://bucket/key``). The gateway turns that location into
the link a user opens: its own logs route, or a fresh presigned S3 URL.

A run that printed nothing stores nothing: the worker reports the location
a put would have (``location``) with a size of 0, and a missing log reads as
empty. Its link opens an empty log: the gateway's route (local store), or a
presigned link to one empty object the workers keep in the bucket (S3: a
link to the run's own key would name no object). Most cron jobs are silent:
a stored empty file per run was an S3 PUT, or a rename and a folder in the
local store, for nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from pathlib import Path
from typing import Any, Protocol

import botocore.config

from cronfleet.config import Settings
from cronfleet.errors import NotFound, Unavailable


class LogStore(Protocol):
    def key_for(self, owner_id: Any, job_id: Any, execution_id: Any, attempt: int) -> str: ...
    # final: the caller is done with the file (the run ended), so the store may
    # take it rather than copy it; the caller must not use the path after.
    async def put(self, key: str, path: Path, *, final: bool = False) -> str: ...
    def location(self, key: str) -> str: ...  # what put reports, for a log never stored
    async def read(self, key: str) -> bytes: ...
    # empty: the log is known to be empty (never stored): a link to nothing's content.
    async def link(self, key: str, execution_id: Any, *, empty: bool = False) -> str: ...
    async def delete(self, keys: list[str]) -> None: ...
    async def close(self) -> None: ...


def _key(prefix: str, owner_id: Any, job_id: Any, execution_id: Any, attempt: int) -> str:
    return f"{prefix}{owner_id}/{job_id}/{execution_id}-{attempt}.log"


class LocalLogStore:
    def __init__(self, root: Path, public_url: str) -> None:
        self.root = Path(root).absolute()
        self._root_text = str(self.root)  # a location is asked for every run: no Path made each time
        self.public_url = public_url.rstrip("/")
        self._made: set[Path] = set()  # folders known to exist

    def key_for(self, owner_id: Any, job_id: Any, execution_id: Any, attempt: int) -> str:
        return _key("", owner_id, job_id, execution_id, attempt)

    async def put(self, key: str, path: Path, *, final: bool = False) -> str:
        dest = self.root / key
        if not (final and self._move(path, dest)):
            await asyncio.to_thread(self._copy, path, dest)
        return self.location(key)

    def location(self, key: str) -> str:
        return f"file://{self._root_text}/{key}"

    def _move(self, src: Path, dest: Path) -> bool:
        """Rename a finished spool file into the store, on the loop: two
        metadata calls, where a copy in a thread was a fifth of a short
        run's cost. False when that cannot be done (another filesystem)."""
        try:
            if dest.parent not in self._made:
                dest.parent.mkdir(parents=True, exist_ok=True)
                if len(self._made) > 10_000:
                    self._made.clear()  # bounded: a folder per job
                self._made.add(dest.parent)
            os.rename(src, dest)  # atomic: a follower reads the old copy or this one
            return True
        except OSError:
            self._made.discard(dest.parent)  # removed meanwhile, or EXDEV: copy
            return False

    @staticmethod
    def _copy(src: Path, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(".part")
        shutil.copyfile(src, tmp)
        tmp.rename(dest)

    async def read(self, key: str) -> bytes:
        try:
            return await asyncio.to_thread((self.root / key).read_bytes)
        except FileNotFoundError as exc:
            raise NotFound("log not found") from exc

    async def link(self, key: str, execution_id: Any, *, empty: bool = False) -> str:
        return f"{self.public_url}/api/v1/executions/{execution_id}/logs"

    async def delete(self, keys: list[str]) -> None:
        def unlink_all() -> None:
            for key in keys:
                (self.root / key).unlink(missing_ok=True)

        await asyncio.to_thread(unlink_all)

    async def close(self) -> None:
        return None


class S3LogStore:
    """Any S3-compatible server, through aioboto3."""

    def __init__(self, settings: Settings) -> None:
        import aioboto3

        self.bucket = settings.s3_bucket
        self.prefix = settings.s3_prefix
        self.expiry = settings.log_url_expiry_seconds
        self.empty_key = f"{self.prefix}empty.log"  # what every silent run's link opens
        self._session = aioboto3.Session(
            aws_access_key_id=settings.s3_access_key_id or None,
            aws_secret_access_key=settings.s3_secret_access_key or None,
            region_name=settings.s3_region,
        )
        self._endpoint = settings.s3_endpoint_url or None
        self._stack = contextlib.AsyncExitStack()
        self._client: Any = None
        self._lock = asyncio.Lock()

    async def _s3(self) -> Any:
        async with self._lock:
            if self._client is None:
                self._client = await self._stack.enter_async_context(
                    self._session.client(
                        "s3",
                        endpoint_url=self._endpoint,
                        config=botocore.config.Config(signature_version="s3v4"),
                    )
                )
        return self._client

    def key_for(self, owner_id: Any, job_id: Any, execution_id: Any, attempt: int) -> str:
        return _key(self.prefix, owner_id, job_id, execution_id, attempt)

    async def put(self, key: str, path: Path, *, final: bool = False) -> str:
        s3 = await self._s3()
        try:
            await s3.upload_file(str(path), self.bucket, key, ExtraArgs={"ContentType": "text/plain"})
        except Exception as exc:  # botocore raises many types; all mean "not stored"
            raise Unavailable(f"log upload to s3://{self.bucket}/{key} failed: {exc}") from exc
        return self.location(key)

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    async def read(self, key: str) -> bytes:
        s3 = await self._s3()
        try:
            obj = await s3.get_object(Bucket=self.bucket, Key=key)
            async with obj["Body"] as body:
                return bytes(await body.read())
        except s3.exceptions.NoSuchKey as exc:
            raise NotFound("log not found") from exc

    async def link(self, key: str, execution_id: Any, *, empty: bool = False) -> str:
        s3 = await self._s3()
        return str(
            await s3.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self.empty_key if empty else key},
                ExpiresIn=self.expiry,
            )
        )

    async def delete(self, keys: list[str]) -> None:
        """Delete objects, a thousand per request (S3's bound); one gone
        already is not an error."""
        s3 = await self._s3()
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            try:
                reply = await s3.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            except Exception as exc:  # botocore raises many types; all mean "not deleted"
                raise Unavailable(f"log delete in s3://{self.bucket} failed: {exc}") from exc
            if reply.get("Errors"):
                first = reply["Errors"][0]
                raise Unavailable(
                    f"log delete in s3://{self.bucket} failed for {len(reply['Errors'])} objects, "
                    f"first {first.get('Key')}: {first.get('Message')}"
                )

    async def ensure_bucket(self) -> None:
        s3 = await self._s3()
        try:
            await s3.head_bucket(Bucket=self.bucket)
        except Exception:  # missing bucket: create it (local and test servers)
            await s3.create_bucket(Bucket=self.bucket)
        try:
            await s3.head_object(Bucket=self.bucket, Key=self.empty_key)
        except Exception:  # not there yet (botocore raises ClientError 404): made once
            await s3.put_object(Bucket=self.bucket, Key=self.empty_key, Body=b"", ContentType="text/plain")

    async def close(self) -> None:
        await self._stack.aclose()
        self._client = None


def open_log_store(settings: Settings) -> LogStore:
    if settings.log_store == "s3":
        return S3LogStore(settings)
    if settings.log_store != "local":
        raise ValueError(f"log_store must be 'local' or 's3', got {settings.log_store!r}")
    return LocalLogStore(settings.logs_path, settings.public_url or f"http://{settings.http_addr}")
