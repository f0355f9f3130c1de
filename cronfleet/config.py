"""Settings for every role, built once at start and passed down.

Values come from a TOML file (``CRONFLEET_CONFIG``; table per role) overlaid
by ``CRONFLEET_*`` environment variables. Library code never reads
``os.environ``: only ``Settings.from_env`` does.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_SHARDS = 256


@dataclass(frozen=True)
class Settings:
    """Everything a cronfleet process may be told. Each role reads its part."""

    database_url: str = "postgresql://postgres@127.0.0.1:5432/cronfleet"
    etcd_endpoints: str = "127.0.0.1:2379"
    # Namespace for every etcd key, so two clusters can share one etcd.
    etcd_prefix: str = "/cronfleet"
    shards: int = DEFAULT_SHARDS
    state_dir: str = ".cronfleet"
    # Where this process serves Prometheus metrics (port 0: any free one; the
    # address is registered with the process's membership). The gateway
    # serves them on its HTTP address instead (/metrics).
    metrics_addr: str = "127.0.0.1:0"

    # gateway
    http_addr: str = "127.0.0.1:8080"
    grpc_addr: str = "127.0.0.1:50051"
    public_url: str = ""
    web_dir: str = ""  # the built dashboard; "" = web/dist of this checkout
    token_ttl_hours: int = 24 * 30
    # Who may tell the HTTP gateway the client's address (X-Forwarded-For,
    # X-Forwarded-Proto): comma-separated addresses or networks of trusted
    # proxies, "*" for any; the per-address limits below count that address.
    forwarded_allow_ips: str = "127.0.0.1"
    # Login and signup throttling (counted in Postgres, so shared by every
    # gateway replica): failed logins (and signups) per account, and auth
    # requests per client address, each per window of seconds (token buckets
    # that refill evenly over the window).
    auth_account_failures: int = 10
    auth_account_window_seconds: float = 900.0
    auth_address_requests: int = 30
    auth_address_window_seconds: float = 60.0
    # Per-user quotas: live jobs (active or paused), and runs per minute (the
    # planned fire rate of a user's active jobs at create, change and resume;
    # manual runs, run-now jobs, replays and backfills against the runs due
    # in the last minute). 0: no quota.
    quota_jobs: int = 10_000
    quota_runs_per_minute: int = 12_000

    # coordinator
    coordinator_id: str = ""
    coordinator_addr: str = "127.0.0.1:0"
    # etcd lease TTL (s) for every member; a member silent this long is dead.
    # 2 s: a dead scheduler's shards move within the 3 s failover target (at
    # 3 s they took 2.6-3.4 s); leases are kept alive every third of it, so a member
    # must stall for 2 s to be judged dead. Raise it on machines that stall.
    member_ttl: int = 2
    # Per-user quota of stored log bytes: past it, the leader removes the
    # user's oldest logs (rows say when) until the rest fit. Checked every
    # log_quota_interval seconds. 0: no quota.
    quota_log_bytes_kept: int = 10 * 1024**3
    log_quota_interval: float = 60.0

    # Alerts, sent by every coordinator (coordinator.alert_delivery): each try
    # of a delivery may take this long; a failed one is tried again after
    # base, 2x base, 4x base... (at most the max), up to max_attempts tries.
    # Where webhooks may point is the HTTP jobs' outbound policy (http_*).
    alert_timeout_seconds: float = 5.0
    alert_max_attempts: int = 8
    alert_retry_base_seconds: float = 2.0
    alert_retry_max_seconds: float = 300.0
    alert_concurrency: int = 16
    alert_poll_interval: float = 0.5

    # scheduler
    scheduler_id: str = ""
    dispatch_addr: str = "127.0.0.1:0"
    claim_interval: float = 0.2
    # An idle scheduler's longest wait between claims (scheduler.claim_loop).
    claim_idle_interval: float = 1.0
    claim_batch: int = 500
    # How far ahead of fire time a fire is claimed and sent to a worker.
    # The process runtime arms a run by spawning its gate (a few ms each, on
    # the worker's loop): a second of 1,000 runs needs seconds of arming, so
    # fires are claimed 3 s ahead (at 1 s, 1,000 due in one second ran p50
    # 3.1 s late; at 3 s, p50 0.45 s). A paused or deleted job's armed runs
    # are withdrawn, not run.
    lookahead_process: float = 3.0
    # Docker runs take a warm container from the worker's pool, so a few
    # seconds ahead is enough (it was 30 s when every run created its own).
    lookahead_docker: float = 3.0
    event_flush_interval: float = 0.02
    retry_backoff_seconds: float = 2.0
    # A fire whose run is lost with its worker runs again elsewhere at most
    # this many times (it uses none of the job's own retries).
    lost_reruns: int = 3
    # Concurrent runs (waiting on a worker or running) per user: a scheduled
    # fire past it is recorded skipped, "quota reached". 0: no quota.
    quota_concurrent_runs: int = 0
    # A fire claimed later than this after its time has misfired, and the
    # job's misfire_policy decides; a later fire (a failover) just runs late.
    misfire_grace_seconds: float = 60.0
    # How far back misfire_policy "run_all" catches up.
    misfire_catchup_seconds: float = 86400.0

    # worker
    worker_id: str = ""
    capacity: int = 64
    # "auto": docker when an engine answers, else process. Or "noop" (benchmarks).
    runtime: str = "auto"
    kill_grace_seconds: float = 5.0
    # process runtime: "fork" forks each run from a resident /bin/sh (half
    # the CPU of an exec; worker.launcher says what differs from sh -c),
    # "exec" execs a /bin/sh gate per run (exactly sh -c, and slower).
    process_launch: str = "fork"
    # How often a running job's output so far is stored (logs?follow=true); 0: never.
    live_log_interval: float = 1.0
    # docker runtime
    docker_image: str = "cronfleet/runner:busybox"
    docker_user: str = "1000:1000"
    docker_network: str = "none"
    docker_runtime_name: str = ""  # e.g. "runsc" for gVisor
    docker_tmpfs_mb: int = 64
    # Release armed runs by a FIFO mounted read-only in each container
    # (worker.release_fifos), when a probe at start shows the engine sees the
    # worker's files; else, or false, by a line through the engine.
    docker_release_fifos: bool = True
    # Where the release FIFOs' folders are made ("": STATE_DIR/gates): a
    # path the engine sees at the same path (Compose, Kubernetes: README).
    docker_release_dir: str = ""
    # A run's image the engine lacks (worker.images): "if_not_present" pulls
    # it from the registry the image names, "always" asks the registry before
    # every run (a newer image replaces warm containers of the older one),
    # "never" fails the run (image_not_found). A pull taking longer than the
    # timeout fails the runs waiting on it.
    image_pull_policy: str = "if_not_present"
    image_pull_timeout_seconds: float = 300.0
    # Registry credentials for pulls: comma-separated REGISTRY=USER:PASSWORD
    # (REGISTRY as the image names it: "registry.example.com:5000",
    # "docker.io"), and/or a Docker config.json ("auths"; the worker's own
    # ~/.docker/config.json when neither is set).
    registry_auth: str = field(default="", repr=False)
    registry_auth_file: str = ""
    arm_concurrency: int = 4
    # The warm pool (docker): idle containers of the default profile kept
    # ready for immediate jobs, and the most idle containers of all profiles.
    pool_floor: int = 4
    pool_max: int = 64
    # Pool containers made at once: the engine starts one at a time ~4/s
    # here, two ~6.5/s, four ~8.5/s; three gave 5 every-second per_run jobs
    # the fewest cold starts (7 of 150, against 120 one at a time).
    pool_refill_parallel: int = 3
    # How far ahead schedulers forecast runs for the workers' pools: long
    # enough for the engine to make a burst's containers (~6/s here; at 10 s,
    # 50 runs due together known a minute ahead had 7-8 start cold).
    pool_horizon_seconds: float = 30.0
    # Per-run resources: the defaults a job gets, and the most it may ask for
    # (the gateway rejects more at submission).
    default_cpus: float = 1.0
    default_memory_mb: int = 256
    default_pids: int = 128
    max_cpus: float = 2.0
    max_memory_mb: int = 4096
    max_pids: int = 1024
    heartbeat_interval: float = 1.0
    # HTTP jobs: loopback, link-local and the cluster's own hosts are refused
    # unless this is set (the local cluster sets it); extra networks to refuse,
    # and (when set) the only networks allowed. Comma-separated CIDRs.
    http_allow_internal: bool = False
    http_deny_networks: str = ""
    http_allow_networks: str = ""
    # A worker cut off from every scheduler this long kills its runs.
    self_fence_seconds: float = 10.0
    # Process runtime: a worker silent this long (frozen) or dead has its runs
    # killed by its watchdog; below the time the coordinator waits before it
    # declares them lost (member_ttl + lost_margin). 0: no watchdog.
    watchdog_seconds: float = 2.0
    # How long after a worker's lease ended the leader declares its runs lost.
    lost_margin: float = 2.0

    # logs
    log_store: str = "local"  # "local" | "s3"
    log_dir: str = ""
    s3_bucket: str = "cronfleet-logs"
    s3_prefix: str = "logs/"
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    log_url_expiry_seconds: int = 3600

    log_level: str = "info"
    log_format: str = "auto"  # "auto" | "json" | "console"

    # security
    # Internal gRPC (worker -> scheduler, gateway -> coordinator) is mutual
    # TLS: each process presents tls_cert (tls_key) and accepts only peers
    # whose certificate tls_ca signed (PEM files; `cronfleet up` makes them,
    # `cronfleet certs` for other deployments). Plaintext only when
    # internal_tls is false ("off"). The public API is not affected.
    internal_tls: bool = True
    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    # Job env values marked secret are sealed with this key (AES-256-GCM)
    # before they are stored; the gateway seals, the scheduler opens them for
    # the worker. 32 bytes in URL-safe base64 (`cronfleet up` makes one), or
    # a file holding that. Without one the gateway refuses secret values.
    secret_key: str = field(default="", repr=False)
    secret_key_file: str = ""

    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def logs_path(self) -> Path:
        return Path(self.log_dir or os.path.join(self.state_dir, "logs"))

    def with_defaults_for(self, role: str) -> Settings:
        """Give the role a stable-for-this-process id when none was set."""
        key = f"{role}_id"
        if hasattr(self, key) and not getattr(self, key):
            return dataclasses.replace(self, **{key: f"{role}-{uuid.uuid4().hex[:8]}"})  # type: ignore[arg-type]
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        config_file = env.get("CRONFLEET_CONFIG")
        if config_file:
            with open(config_file, "rb") as fh:
                data = tomllib.load(fh)
            for section in data.values() if _all_tables(data) else [data]:
                values.update(section)
        for f in dataclasses.fields(cls):
            if f.name == "extra":
                continue
            raw = env.get(f"CRONFLEET_{f.name.upper()}")
            if raw is not None:
                values[f.name] = raw
        return cls(**{k: _coerce(cls, k, v) for k, v in values.items()})


def _all_tables(data: Mapping[str, Any]) -> bool:
    return bool(data) and all(isinstance(v, dict) for v in data.values())


def _flag(name: str, value: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"setting {name}: {value!r} is not one of on/off, true/false, yes/no, 1/0")


def _coerce(cls: type[Settings], name: str, value: Any) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if name not in fields:
        raise ValueError(f"unknown setting {name!r}")
    default = fields[name].default
    if isinstance(default, bool):
        return value if isinstance(value, bool) else _flag(name, str(value))
    try:
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except ValueError as exc:
        raise ValueError(f"setting {name}: {value!r} is not a number") from exc
    return value
