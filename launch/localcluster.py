"""``cronfleet up``: a whole cluster on this machine, each role its own process.

Postgres and etcd are started here too unless CRONFLEET_DATABASE_URL /
CRONFLEET_ETCD_ENDPOINTS point elsewhere. State lives under the state dir
(``./.cronfleet``). Ctrl-C stops every process cleanly.
"""

from __future__ import annotations

import dataclasses
import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cronfleet.config import Settings
from cronfleet.db.migrate import migrate
from launch.devservices import LocalEtcd, LocalPostgres, free_port, port_is_free, wait_for

GRACE_SECONDS = 10


def _port(preferred: int) -> int:
    return preferred if port_is_free(preferred) else free_port()


def _http_ready(addr: str) -> bool:
    host, _, port = addr.rpartition(":")
    try:
        conn = http.client.HTTPConnection(host, int(port), timeout=1)
        conn.request("GET", "/readyz")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def run_local_cluster(
    settings: Settings,
    coordinators: int,
    schedulers: int,
    workers: int,
    environ: dict[str, str] | None = None,
) -> int:
    env = dict(os.environ if environ is None else environ)
    state = Path(settings.state_dir).absolute()
    (state / "run").mkdir(parents=True, exist_ok=True)
    postgres = etcd_server = None
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        if "CRONFLEET_DATABASE_URL" not in env:
            postgres = LocalPostgres(state / "pg", _port(55432))
            postgres.start()
            settings = dataclasses.replace(settings, database_url=postgres.create_database("cronfleet"))
        if "CRONFLEET_ETCD_ENDPOINTS" not in env:
            etcd_server = LocalEtcd(state / "etcd", _port(2379), free_port())
            settings = dataclasses.replace(settings, etcd_endpoints=etcd_server.start())
        migrate(settings.database_url)

        child_env = env | {
            "CRONFLEET_DATABASE_URL": settings.database_url,
            "CRONFLEET_ETCD_ENDPOINTS": settings.etcd_endpoints,
            "CRONFLEET_STATE_DIR": str(state),
            "CRONFLEET_LOG_DIR": str(settings.logs_path.absolute()),
            "CRONFLEET_HTTP_ADDR": settings.http_addr,
            "CRONFLEET_GRPC_ADDR": settings.grpc_addr,
            "CRONFLEET_PUBLIC_URL": settings.public_url or f"http://{settings.http_addr}",
            "CRONFLEET_LOG_FORMAT": "json",
        }
        plan = [("coordinator", i) for i in range(coordinators)]
        plan += [("scheduler", i) for i in range(schedulers)]
        plan += [("worker", i) for i in range(workers)] + [("gateway", 0)]
        for role, i in plan:
            name = f"{role}-{i + 1}"
            extra = {f"CRONFLEET_{role.upper()}_ID": name} if role != "gateway" else {}
            with open(state / "run" / f"{name}.log", "ab") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "launch", role],
                    env=child_env | extra,
                    stdout=out,
                    stderr=out,
                    start_new_session=True,
                )
            procs.append((name, proc))
        wait_for(lambda: stopping or _http_ready(settings.http_addr), 60, "gateway")
        if not stopping:
            print(
                f"cronfleet is up: {coordinators} coordinator(s), {schedulers} scheduler(s), "
                f"{workers} worker(s)",
                flush=True,
            )
            print(f"  HTTP API  http://{settings.http_addr}/api/v1   (OpenAPI: /api/v1/openapi.json)")
            print(f"  gRPC API  {settings.grpc_addr}")
            print(f"  Postgres  {settings.database_url}")
            print(f"  etcd      {settings.etcd_endpoints}")
            print(f"  logs      {state / 'run'}/*.log  (run output: {settings.logs_path})")
            print("Ctrl-C stops everything.", flush=True)
        while not stopping:
            for name, proc in procs:
                if proc.poll() is not None:
                    print(
                        f"warning: {name} exited with {proc.returncode}; see {state / 'run' / name}.log",
                        file=sys.stderr,
                        flush=True,
                    )
                    procs.remove((name, proc))
                    break
            time.sleep(0.2)
        return 0
    finally:
        for _, proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        for _, proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if etcd_server:
            etcd_server.stop()
        if postgres:
            postgres.stop()
        print("cronfleet stopped.", flush=True)
