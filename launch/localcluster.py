"""``cronfleet up``: a whole cluster on this machine, each role its own process.

Postgres and etcd (one member, or a cluster of several) are started here too
unless CRONFLEET_DATABASE_URL / CRONFLEET_ETCD_ENDPOINTS point elsewhere.
State lives under the state dir (``./.cronfleet``); each process's log and
pid are in ``run/``. A role that dies is started again (with backoff, and
said on stderr), as Compose or Kubernetes would. Ctrl-C stops every process
cleanly.

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
from launch.devservices import LocalEtcd, LocalEtcdCluster, LocalPostgres, free_port, port_is_free, wait_for

# How long a role has from SIGTERM to SIGKILL. A worker stops its runs,
# reports them and removes its containers (a busy one with fifty took 10 s
# here); Compose gives it 30 s, the Kubernetes manifests 60. The other roles
# only hand over.
GRACE_SECONDS = {"worker": 30.0}
DEFAULT_GRACE_SECONDS = 10.0
# A role that dies is restarted after this, doubled for each death within
# STABLE_SECONDS of its start (a role that cannot start does not spin).
RESTART_BACKOFF = (0.2, 10.0)
STABLE_SECONDS = 30.0


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
    etcd_members: int = 1,
) -> int:
    """Run until Ctrl-C (SIGINT) or SIGTERM; every process is stopped after."""
    counts = {"coordinator": coordinators, "scheduler": schedulers, "worker": workers, "gateway": 1}
    env = dict(os.environ if environ is None else environ)
    return LocalCluster(settings, counts, env, etcd_members).run()


@dataclasses.dataclass
class Member:
    """One role process, started again when it dies."""

    name: str
    role: str
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    backoff: float = RESTART_BACKOFF[0]
    restart_at: float | None = None  # when a dead one is started again
    restarts: int = 0


class LocalCluster:
    def __init__(
        self, settings: Settings, counts: dict[str, int], env: dict[str, str], etcd_members: int = 1
    ) -> None:
        self.settings = settings
        self.counts = counts
        self.env = env
        self.etcd_members = etcd_members
        self.state = Path(settings.state_dir).absolute()
        self.postgres: LocalPostgres | None = None
        self.etcd: LocalEtcd | LocalEtcdCluster | None = None
        self.members: list[Member] = []
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
            if self.etcd_members > 1:
                self.etcd = LocalEtcdCluster(self.state / "etcd-cluster", self.etcd_members, _port(2379))
            else:
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
                    member = Member(name, role, role_env)
                else:
                    self.metrics[name] = f"127.0.0.1:{free_port()}"
                    ids = {f"CRONFLEET_{role.upper()}_ID": name, "CRONFLEET_METRICS_ADDR": self.metrics[name]}
                    member = Member(name, role, role_env | ids)
                self.members.append(member)
                self._spawn(member)
        self._write_scrape_config()

    def _spawn(self, member: Member) -> None:
        run = self.state / "run"
        with open(run / f"{member.name}.log", "ab") as out:
            member.proc = subprocess.Popen(
                [sys.executable, "-m", "launch", member.role],
                env=member.env,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        member.started_at = time.monotonic()
        pid_file = run / f"{member.name}.pid"
        pid_file.with_suffix(".pid.new").write_text(f"{member.proc.pid}\n")
        pid_file.with_suffix(".pid.new").rename(pid_file)  # a reader never sees it half written

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
        """Start again a role that died, after a backoff that grows while it
        keeps dying soon after its start; say so either way."""
        while not self.stopping:
            now = time.monotonic()
            for m in self.members:
                if m.restart_at is not None:
                    if now >= m.restart_at:
                        m.restart_at = None
                        m.restarts += 1
                        self._spawn(m)
                        _say(f"{m.name} started again (restart {m.restarts})")
                elif m.proc is not None and m.proc.poll() is not None:
                    if now - m.started_at >= STABLE_SECONDS:
                        m.backoff = RESTART_BACKOFF[0]  # it had been up a while: a fresh failure
                    delay, m.backoff = m.backoff, min(m.backoff * 2, RESTART_BACKOFF[1])
                    m.restart_at = now + delay
                    log = self.state / "run" / f"{m.name}.log"
                    _say(f"{m.name} exited with {m.proc.returncode} (see {log}); restarting in {delay:.1f} s")
            time.sleep(0.1)

    def _stop(self) -> None:
        """SIGTERM every role (they drain), SIGKILL what outlives the grace, then the services."""
        stopping = [
            (m.proc, GRACE_SECONDS.get(m.role, DEFAULT_GRACE_SECONDS))
            for m in self.members
            if m.proc is not None
        ]
        for proc, _ in stopping:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        for proc, grace in stopping:
            try:
                proc.wait(max(0.1, sent + grace - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.etcd:
            self.etcd.stop()
        if self.postgres:
            self.postgres.stop()
        print("cronfleet stopped.", flush=True)


def _say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)
