"""Shared fixtures.

Real services for integration and end-to-end tests, started once per run on
free loopback ports: Postgres (a migrated template database, copied per
test), etcd, an S3 API server (moto), Docker registries (image pulls). On
top of them: the API's service layer, a signed-up user, and settings for
roles run in-process.
"""

from __future__ import annotations

import itertools
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from cronfleet.db import Database
from cronfleet.db.migrate import migrate
from cronfleet.logstore import LocalLogStore
from cronfleet.records import User
from cronfleet.sealing import SecretKey
from cronfleet.tls import TlsFiles, ensure_local_pki
from gateway.service import JobsService
from launch.devservices import LocalEtcd, LocalPostgres, free_port
from tests.helpers import new_user
from tests.registry import LocalRegistry

TEMPLATE_DB = "cronfleet_template"
_db_counter = itertools.count(1)


@pytest.fixture(scope="session")
def service_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="cronfleet-test-"))
    yield root
    # Removed by a process of its own that outlives the run: a whole suite
    # leaves some 170 databases here (7 MB and 550 files each at least),
    # clusters' state and registries' blobs; unlinking them took 26 s.
    subprocess.Popen(["rm", "-rf", str(root)], start_new_session=True)


@pytest.fixture(scope="session")
def pg_server(service_root: Path) -> Iterator[LocalPostgres]:
    pg = LocalPostgres(service_root / "pg", free_port(), durable=False)
    pg.start()
    migrate(pg.create_database(TEMPLATE_DB))
    yield pg
    pg.stop()


@pytest.fixture
def database_url(pg_server: LocalPostgres) -> str:
    """A fresh, migrated database for one test."""
    return pg_server.create_database(f"test_{next(_db_counter)}_{uuid.uuid4().hex[:6]}", TEMPLATE_DB)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, max_size=8)
    await database.open()
    yield database
    await database.close()


@pytest.fixture(scope="session")
def etcd_server(service_root: Path) -> Iterator[LocalEtcd]:
    server = LocalEtcd(service_root / "etcd", free_port(), free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def etcd_prefix() -> str:
    """Each test its own key space in the shared etcd."""
    return f"/test-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="session")
def registry(service_root: Path) -> Iterator[LocalRegistry]:
    """A Docker registry on loopback (Debian's docker-registry), open to all."""
    server = LocalRegistry(service_root / "registry")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def private_registry(service_root: Path) -> Iterator[LocalRegistry]:
    """A Docker registry on loopback behind htpasswd basic auth."""
    server = LocalRegistry(service_root / "private-registry", "puller", "s3cret:with-colon")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pki(service_root: Path) -> dict[str, TlsFiles]:
    """A CA and one certificate per role, as `cronfleet up` makes them: roles
    run in-process talk mutual TLS too (tests.helpers.as_role)."""
    return ensure_local_pki(service_root / "tls")


@pytest.fixture(scope="session")
def secret_key() -> SecretKey:
    return SecretKey.generate()


# ------------------------------------------------------------- API layer
@pytest.fixture
def shards() -> int:
    """How many shards the service spreads jobs over (a module may override)."""
    return 256


@pytest.fixture
def service(db: Database, tmp_path: Path, shards: int, secret_key: SecretKey) -> JobsService:
    """The API's service layer (what HTTP and gRPC call) on a fresh database."""
    logs = LocalLogStore(tmp_path / "logs", "http://gw")
    return JobsService(db, logs, shards=shards, token_ttl=timedelta(hours=1), secret_key=secret_key)


@pytest.fixture
async def user(service: JobsService) -> User:
    return await new_user(service, "ann")
