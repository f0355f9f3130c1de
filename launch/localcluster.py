"""``cronfleet up``: a whole cluster on this machine, each role its own process.

Postgres and etcd are started here too unless CRONFLEET_DATABASE_URL /
CRONFLEET_ETCD_ENDPOINTS point elsewhere. State lives under the state dir
(``./.cronfleet``). Ctrl-C stops every process cleanly.

Security material is made once and kept there, reused while valid: a local
CA and one certificate per role for internal mutual TLS (``tls/``; not with
CRONFLEET_INTERNAL_TLS=off, nor when CRONFLEET_TLS_* name files already), and
the key secret env values are sealed with (``secret.key``; unless one is set).
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

from cronfleet import sealing, tls
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
    """Run until Ctrl-C (SIGINT) or SIGTERM; every process is stopped after."""
    counts = {"coordinator": coordinators, "scheduler": schedulers, "worker": workers, "gateway": 1}
    return LocalCluster(settings, counts, dict(os.environ if environ is None else environ)).run()


class LocalCluster:
    def __init__(self, settings: Settings, counts: dict[str, int], env: dict[str, str]) -> None:
        self.settings = settings
        self.counts = counts
        self.env = env
        self.state = Path(settings.state_dir).absolute()
        self.postgres: LocalPostgres | None = None
        self.etcd: LocalEtcd | None = None
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.metrics: dict[str, str] = {}  # member -> where it serves /metrics
        self.security: list[str] = []  # what the banner says about TLS and the secret key
        self.stopping = False

    def run(self) -> int:
        signal.signal(signal.SIGINT, self._request_stop)
        signal.signal(signal.SIGTERM, self._request_stop)
        (self.state / "run").mkdir(parents=True, exist_ok=True)
        try:
            self._start_services()
            self._start_roles()
            wait_for(lambda: self.stopping or _http_ready(self.settings.http_addr), 60, "gateway")
            if not self.stopping:
                self._print_banner()
            self._supervise()
            return 0
        finally:
            self._stop()

    def _request_stop(self, signum: int, frame: object) -> None:
        self.stopping = True

    def _start_services(self) -> None:
        """Postgres and etcd of our own, unless the environment names others."""
        if "CRONFLEET_DATABASE_URL" not in self.env:
            self.postgres = LocalPostgres(self.state / "pg", _port(55432))
            self.postgres.start()
            url = self.postgres.create_database("cronfleet")
            self.settings = dataclasses.replace(self.settings, database_url=url)
        if "CRONFLEET_ETCD_ENDPOINTS" not in self.env:
            self.etcd = LocalEtcd(self.state / "etcd", _port(2379), free_port())
            self.settings = dataclasses.replace(self.settings, etcd_endpoints=self.etcd.start())
        migrate(self.settings.database_url)

    def _security(self) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
        """What every role gets (the secret key's file) and what each role gets
        (its TLS files), made or reused under the state dir."""
        s = self.settings
        shared = {}
        if not s.secret_key and not s.secret_key_file:
            shared["CRONFLEET_SECRET_KEY_FILE"] = str(sealing.ensure_key_file(self.state / "secret.key"))
        key = shared.get("CRONFLEET_SECRET_KEY_FILE") or s.secret_key_file or "CRONFLEET_SECRET_KEY"
        self.security = [f"secrets   env values marked secret sealed with {key}"]
        per_role: dict[str, dict[str, str]] = {}
        if not s.internal_tls:
            self.security.append("internal  gRPC in plaintext (CRONFLEET_INTERNAL_TLS=off)")
        elif s.tls_ca and s.tls_cert and s.tls_key:
            self.security.append(f"internal  gRPC over mutual TLS, CA {s.tls_ca}")
        else:
            files = tls.ensure_local_pki(self.state / "tls")
            per_role = {role: f.env() for role, f in files.items()}
            self.security.append(f"internal  gRPC over mutual TLS, CA {files['gateway'].ca}")
        return shared, per_role

    def _start_roles(self) -> None:
        s = self.settings
        shared, per_role = self._security()
        child_env = (
            shared
            | self.env
            | {
                "CRONFLEET_DATABASE_URL": s.database_url,
                "CRONFLEET_ETCD_ENDPOINTS": s.etcd_endpoints,
                "CRONFLEET_STATE_DIR": str(self.state),
                "CRONFLEET_LOG_DIR": str(s.logs_path.absolute()),
                "CRONFLEET_HTTP_ADDR": s.http_addr,
                "CRONFLEET_GRPC_ADDR": s.grpc_addr,
                "CRONFLEET_PUBLIC_URL": s.public_url or f"http://{s.http_addr}",
                "CRONFLEET_LOG_FORMAT": "json",
                # Everything here is on loopback: let HTTP jobs call it.
                "CRONFLEET_HTTP_ALLOW_INTERNAL": self.env.get("CRONFLEET_HTTP_ALLOW_INTERNAL", "true"),
            }
        )
        for role, count in self.counts.items():
            for i in range(count):
                name = f"{role}-{i + 1}"
                role_env = child_env | per_role.get(role, {})
                if role == "gateway":
                    self.metrics[name] = s.http_addr
                    self._spawn(role, name, role_env)
                    continue
                self.metrics[name] = f"127.0.0.1:{free_port()}"
                member = {f"CRONFLEET_{role.upper()}_ID": name, "CRONFLEET_METRICS_ADDR": self.metrics[name]}
                self._spawn(role, name, role_env | member)
        self._write_scrape_config()

    def _spawn(self, role: str, name: str, env: dict[str, str]) -> None:
        with open(self.state / "run" / f"{name}.log", "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "launch", role],
                env=env,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        self.procs.append((name, proc))

    def _write_scrape_config(self) -> None:
        """A Prometheus scrape config for every process here (prometheus.yml)."""
        lines = ["# Written by `cronfleet up`: prometheus --config.file=this", "scrape_configs:"]
        for name, addr in self.metrics.items():
            lines += [
                f"  - job_name: {name}",
                "    scrape_interval: 5s",
                f"    static_configs: [{{targets: ['{addr}'], labels: {{role: {name.rsplit('-', 1)[0]}}}}}]",
            ]
        (self.state / "prometheus.yml").write_text("\n".join(lines) + "\n")

    def _print_banner(self) -> None:
        s, c = self.settings, self.counts
        print(
            f"cronfleet is up: {c['coordinator']} coordinator(s), {c['scheduler']} scheduler(s), "
            f"{c['worker']} worker(s)",
            flush=True,
        )
        print(f"  dashboard http://{s.http_addr}/")
        print(f"  HTTP API  http://{s.http_addr}/api/v1   (OpenAPI: /api/v1/openapi.json)")
        print(f"  gRPC API  {s.grpc_addr}")
        print(f"  Postgres  {s.database_url}")
        print(f"  etcd      {s.etcd_endpoints}")
        print(f"  logs      {self.state / 'run'}/*.log  (run output: {s.logs_path})")
        for line in self.security:
            print(f"  {line}")
        print(f"  metrics   {self.state / 'prometheus.yml'} (Prometheus scrape config)")
        for name, addr in self.metrics.items():
            print(f"            {name:<14} http://{addr}/metrics")
        print("Ctrl-C stops everything.", flush=True)

    def _supervise(self) -> None:
        """Say so when a process exits on its own; the rest go on."""
        while not self.stopping:
            for name, proc in self.procs:
                if proc.poll() is not None:
                    log = self.state / "run" / f"{name}.log"
                    print(
                        f"warning: {name} exited with {proc.returncode}; see {log}",
                        file=sys.stderr,
                        flush=True,
                    )
                    self.procs.remove((name, proc))
                    break
            time.sleep(0.2)

    def _stop(self) -> None:
        """SIGTERM every role (they drain), SIGKILL what outlives the grace, then the services."""
        for _, proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        for _, proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.etcd:
            self.etcd.stop()
        if self.postgres:
            self.postgres.stop()
        print("cronfleet stopped.", flush=True)
