"""The chaos suite's cluster (3 etcd members, 2 coordinators, 3 schedulers,
3 workers on the process runtime) and the plan of a run."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from launch.devservices import LocalEtcdCluster, LocalPostgres, free_port, wait_for

CGROUP_ROOT = Path("/sys/fs/cgroup/unified")


@dataclass
class Plan:
    """How much load and how many faults; ``make chaos`` runs a longer one."""

    seed: int = 7
    every_second: int = 10  # "* * * * * *"
    every_few: int = 30  # every 3 s
    long_runs: int = 6  # every 5 s, living 3 s (heartbeats): a fault finds them mid-run
    forbid: int = 6  # every 2 s, living 3 s, concurrency "forbid": never two at once
    one_off_every: float = 0.5  # an acknowledged create of a one-off due 2 s later
    faults: int = 8
    settle: float = 6.0  # seconds between faults
    stop_for: float = 5.0  # SIGSTOP length: past the 3 s lease (and the worker's 2 s watchdog)
    cut_for: float = 14.0  # past the worker's 10 s self-fence
    only: list[str] | None = None  # these kinds only (all by default)


class ChaosCluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.state = root / "state"
        self.witness = root / "witness.log"
        self.pg = LocalPostgres(root / "pg", free_port())
        self.etcd = LocalEtcdCluster(root / "etcd", 3)
        self.http = f"127.0.0.1:{free_port()}"
        self.up: subprocess.Popen[bytes] | None = None
        self.token = ""
        self.db_url = ""

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.pg.start()
        self.db_url = self.pg.create_database("cronfleet")
        endpoints = self.etcd.start()
        env = os.environ | {
            "CRONFLEET_DATABASE_URL": self.db_url,
            "CRONFLEET_ETCD_ENDPOINTS": endpoints,
            "CRONFLEET_STATE_DIR": str(self.state),
            "CRONFLEET_HTTP_ADDR": self.http,
            "CRONFLEET_GRPC_ADDR": f"127.0.0.1:{free_port()}",
            "CRONFLEET_RUNTIME": "process",
            "CRONFLEET_CAPACITY": "200",
        }
        log = open(self.root / "up.log", "wb")  # noqa: SIM115 - lives with the process
        self.up = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "launch",
                "up",
                "--coordinators",
                "2",
                "--schedulers",
                "3",
                "--workers",
                "3",
            ],
            env=env,
            stdout=log,
            stderr=log,
        )
        log.close()
        wait_for(self._ready, 90, "chaos cluster")

    def _ready(self) -> bool:
        assert self.up is not None and self.up.poll() is None, (self.root / "up.log").read_text()
        try:
            if not self.token:
                self.token = self._sign_up()
            body = self.api().get("/cluster").json()
        except (httpx.HTTPError, ValueError, KeyError):
            return False
        return (
            len(body.get("schedulers", [])) == 3
            and all(s["shards"] for s in body["schedulers"])
            and len(body.get("workers", [])) == 3
            and bool(body.get("leader"))
        )

    def _sign_up(self) -> str:
        email = f"chaos-{uuid.uuid4().hex[:6]}@example.com"
        with httpx.Client(base_url=f"http://{self.http}/api/v1", timeout=5) as c:
            c.post("/auth/signup", json={"name": "Chaos", "email": email, "password": "password123"})
            reply = c.post("/auth/login", json={"email": email, "password": "password123"})
            return str(reply.json()["token"])

    def api(self, timeout: float = 5) -> httpx.Client:
        return httpx.Client(
            base_url=f"http://{self.http}/api/v1",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=timeout,
        )

    def stop(self) -> None:
        for member in ("worker-1", "worker-2", "worker-3"):
            uncut(self, member)
        for name in self.role_names():  # none may be left stopped
            with contextlib.suppress(ProcessLookupError, FileNotFoundError, ValueError):
                os.kill(self.pid(name), signal.SIGCONT)
        if self.up is not None and self.up.poll() is None:
            self.up.send_signal(signal.SIGINT)
            try:
                self.up.wait(40)
            except subprocess.TimeoutExpired:
                self.up.kill()
                self.up.wait()
        self.etcd.stop()
        self.pg.stop()

    # ------------------------------------------------------------ members
    def role_names(self) -> list[str]:
        return sorted(p.stem for p in (self.state / "run").glob("*.pid"))

    def pid(self, name: str) -> int:
        return int((self.state / "run" / f"{name}.pid").read_text())  # written whole (renamed into place)

    def leader(self) -> str:
        return str(self.api().get("/cluster").json()["leader"])

    def scheduler_ports(self) -> list[int]:
        body = self.api().get("/cluster").json()
        return [int(s["address"].rsplit(":", 1)[1]) for s in body["schedulers"] if s.get("address")]

    def role_log_events(self, prefix: str, event: str) -> int:
        """How many times members named ``prefix``* logged ``event``."""
        count = 0
        for path in (self.state / "run").glob(f"{prefix}*.log"):
            for line in path.read_text(errors="replace").splitlines():
                if f'"event": "{event}"' in line:
                    count += 1
        return count


_cut_ports: dict[str, list[int]] = {}  # worker -> the ports its rules reject


def cut(cluster: ChaosCluster, name: str) -> None:
    group = CGROUP_ROOT / f"cronfleet-chaos-{name}"
    group.mkdir(exist_ok=True)
    (group / "cgroup.procs").write_text(str(cluster.pid(name)))
    _cut_ports[name] = cluster.scheduler_ports()
    for port in _cut_ports[name]:
        _iptables("-A", group.name, port)


def uncut(cluster: ChaosCluster, name: str) -> None:
    group = CGROUP_ROOT / f"cronfleet-chaos-{name}"
    for port in _cut_ports.pop(name, []):
        _iptables("-D", group.name, port)
    if not group.exists():
        return
    for pid in (group / "cgroup.procs").read_text().split():
        with contextlib.suppress(OSError):
            (CGROUP_ROOT / "cgroup.procs").write_text(pid)
    with contextlib.suppress(OSError):
        group.rmdir()


def _iptables(action: str, group: str, port: int) -> None:
    subprocess.run(
        ["iptables", action, "OUTPUT", "-o", "lo", "-p", "tcp", "--dport", str(port),
         "-m", "cgroup", "--path", f"/{group}", "-j", "REJECT", "--reject-with", "tcp-reset"],
        check=True,
    )  # fmt: skip
