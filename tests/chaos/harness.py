"""The chaos suite: a local cluster (3 etcd members, 2 coordinators, 3
schedulers, 3 workers on the process runtime), jobs whose commands write a
witness line outside the cluster, faults injected one at a time in an order
drawn from a fixed seed, and the witness compared with what the schedules
imply.

Each run writes to the witness file (O_APPEND, one short line per write, so
lines never interleave): ``S`` when it starts, ``H`` every half second while
a long one lives, ``E`` when it ends, each with the job, the fire it is for
($CRONFLEET_SCHEDULED_AT), the attempt, the command's own clock and its pid.

Faults: SIGSTOP of a scheduler, of the leading coordinator and of a worker
past their leases (then SIGCONT); SIGKILL of a worker mid-run (``cronfleet
up`` starts it again); a worker cut off from its schedulers without stopping
it (an iptables rule matching the worker's cgroup rejects its packets to the
schedulers' ports: closing its connections at the socket level; its etcd
session lives on); SIGKILL of Postgres under load (started again after a
moment); SIGKILL of one etcd member (started again later).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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


@dataclass
class Fault:
    kind: str
    target: str
    at: float  # epoch seconds it began
    healed: float = 0.0


@dataclass
class Line:
    kind: str  # S, H, E
    job: str
    scheduled: float
    attempt: int
    clock: float
    pid: int


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


# ---------------------------------------------------------------- the load
def witness_command(path: Path, lives: float = 0.0) -> str:
    fields = "$CRONFLEET_JOB_ID $CRONFLEET_SCHEDULED_AT $CRONFLEET_ATTEMPT $(date +%s.%N) $$"
    start = f'echo "S {fields}" >> {path}'
    if not lives:
        return start
    beats = " ".join(str(i) for i in range(int(lives / 0.5)))
    return (
        f'{start}; for _ in {beats}; do sleep 0.5; echo "H {fields}" >> {path}; done; '
        f'echo "E {fields}" >> {path}'
    )


@dataclass
class Load:
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> the body sent
    acknowledged: dict[str, float] = field(default_factory=dict)  # one-off id -> due (epoch)
    create_failures: int = 0


def create_jobs(cluster: ChaosCluster, plan: Plan, load: Load) -> None:
    w = cluster.witness
    kinds = [
        (plan.every_second, "sec", {"schedule": "* * * * * *", "command": witness_command(w)}),
        (plan.every_few, "few", {"schedule": "*/3 * * * * *", "command": witness_command(w)}),
        (plan.long_runs, "long", {"schedule": "*/5 * * * * *", "command": witness_command(w, 3)}),
        (
            plan.forbid,
            "forbid",
            {"schedule": "*/2 * * * * *", "command": witness_command(w, 3), "concurrency_policy": "forbid"},
        ),
    ]
    with cluster.api(timeout=30) as api:
        for count, name, body in kinds:
            for i in range(count):
                spec = {"name": f"{name}-{i}", "misfire_policy": "run_all", "timeout_seconds": 60, **body}
                reply = api.post("/jobs", json=spec)
                assert reply.status_code == 201, reply.text
                load.jobs[reply.json()["id"]] = spec


def keep_creating(cluster: ChaosCluster, plan: Plan, load: Load, stop: threading.Event) -> None:
    """One-offs due 2 s ahead, all along: whatever the API acknowledged must
    exist afterwards and run once; a refusal or timeout is not acknowledged."""
    with cluster.api(timeout=5) as api:
        while not stop.wait(plan.one_off_every):
            due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
            body = {"name": "once", "command": witness_command(cluster.witness), "run_at": due.isoformat()}
            try:
                reply = api.post("/jobs", json=body)
            except httpx.HTTPError:
                load.create_failures += 1
                continue
            if reply.status_code == 201:
                load.acknowledged[reply.json()["id"]] = due.timestamp()
            else:
                load.create_failures += 1


# ---------------------------------------------------------------- the faults
def _pause(cluster: ChaosCluster, name: str, seconds: float) -> None:
    pid = cluster.pid(name)
    os.kill(pid, signal.SIGSTOP)
    time.sleep(seconds)
    os.kill(pid, signal.SIGCONT)


def stop_scheduler(cluster: ChaosCluster, rng: random.Random, plan: Plan) -> str:
    name = rng.choice(["scheduler-1", "scheduler-2", "scheduler-3"])
    _pause(cluster, name, plan.stop_for)
    return name


def stop_leader(cluster: ChaosCluster, rng: random.Random, plan: Plan) -> str:
    name = cluster.leader()
    _pause(cluster, name, plan.stop_for)
    return name


def stop_worker(cluster: ChaosCluster, rng: random.Random, plan: Plan) -> str:
    name = rng.choice(["worker-1", "worker-2", "worker-3"])
    _pause(cluster, name, plan.stop_for)
    return name


def kill_worker(cluster: ChaosCluster, rng: random.Random, plan: Plan) -> str:
    name = rng.choice(["worker-1", "worker-2", "worker-3"])
    old = cluster.pid(name)
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: cluster.pid(name) != old, 30, f"{name} restarted")
    return name


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


def cut_worker(cluster: ChaosCluster, rng: random.Random, plan: Plan) -> str:
    name = rng.choice(["worker-1", "worker-2", "worker-3"])
    cut(cluster, name)
    try:
        time.sleep(plan.cut_for)
    finally:
        uncut(cluster, name)
    return name


def kill_postgres(cluster: ChaosCluster, rng: random.Random, plan: Plan) -> str:
    pid = int((cluster.pg.data_dir / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not _alive(pid), 10, "postgres gone")
    time.sleep(2)  # down for a moment, as a restart by its supervisor would be
    (cluster.pg.data_dir / "postmaster.pid").unlink(missing_ok=True)
    cluster.pg.start()
    return "postgres"


def kill_etcd_member(cluster: ChaosCluster, rng: random.Random, plan: Plan) -> str:
    member = rng.choice(cluster.etcd.members)
    member.kill()
    time.sleep(plan.stop_for)
    member.start()
    return member.name


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


FAULTS: dict[str, Callable[[ChaosCluster, random.Random, Plan], str]] = {
    "stop_scheduler": stop_scheduler,
    "stop_leader": stop_leader,
    "kill_worker": kill_worker,
    "stop_worker": stop_worker,
    "cut_worker": cut_worker,
    "kill_postgres": kill_postgres,
    "kill_etcd_member": kill_etcd_member,
}


def fault_order(plan: Plan, rng: random.Random) -> list[str]:
    """Every kind once (in an order drawn from the seed), then more at random."""
    known = plan.only or list(FAULTS)
    kinds = list(known)
    rng.shuffle(kinds)
    while len(kinds) < plan.faults:
        kinds.append(rng.choice(known))
    return kinds[: max(plan.faults, 0)]


# ---------------------------------------------------------------- the verdict
@dataclass
class Report:
    window: tuple[float, float]
    faults: list[Fault]
    expected: int = 0
    lost: list[tuple[str, float]] = field(default_factory=list)
    duplicated: list[tuple[str, float, int]] = field(default_factory=list)
    early: list[tuple[str, float, float]] = field(default_factory=list)
    live_twice: list[tuple[str, float]] = field(default_factory=list)
    forbid_overlaps: list[tuple[str, float, float]] = field(default_factory=list)
    creates_missing: list[str] = field(default_factory=list)
    creates_acknowledged: int = 0
    create_failures: int = 0
    claims_fenced: int = 0
    reruns: int = 0
    gaps: dict[int, float] = field(default_factory=dict)  # fault index -> seconds firing stopped
    restarts: list[str] = field(default_factory=list)

    @property
    def broken(self) -> dict[str, int]:
        counts = {
            "lost": len(self.lost),
            "duplicated attempts": len(self.duplicated),
            "early starts": len(self.early),
            "attempts live twice": len(self.live_twice),
            "forbid overlaps": len(self.forbid_overlaps),
            "acknowledged creates missing": len(self.creates_missing),
        }
        return {k: v for k, v in counts.items() if v}

    def text(self) -> str:
        start = datetime.fromtimestamp(self.window[0], UTC).strftime("%H:%M:%S")
        lines = [
            f"chaos: {len(self.faults)} faults, fires due {start} + {self.window[1] - self.window[0]:.0f} s",
            f"  fires the schedules imply: {self.expected}; re-runs of lost attempts: {self.reruns}",
            f"  lost {len(self.lost)}, duplicated attempts {len(self.duplicated)},"
            f" early starts {len(self.early)}, attempts live twice {len(self.live_twice)},"
            f" forbid overlaps {len(self.forbid_overlaps)}",
            f"  acknowledged creates {self.creates_acknowledged}, missing {len(self.creates_missing)}"
            f" (not acknowledged: {self.create_failures})",
            f"  claims refused by the fence (stale schedulers): {self.claims_fenced}",
            "  faults (firing stopped for = the latest start of a fire due in the 10 s after it):",
        ]
        for i, f in enumerate(self.faults):
            at = datetime.fromtimestamp(f.at, UTC).strftime("%H:%M:%S")
            lines.append(
                f"    {at} {f.kind:<17} {f.target:<14} healed after {f.healed - f.at:4.1f} s,"
                f" firing stopped for {self.gaps.get(i, 0.0):4.1f} s"
            )
        if self.restarts:
            lines.append("  the local cluster said: " + "; ".join(self.restarts))
        for name, items in (
            ("lost", self.lost[:10]),
            ("duplicated", self.duplicated[:10]),
            ("early", self.early[:10]),
            ("live twice", self.live_twice[:10]),
            ("forbid overlaps", self.forbid_overlaps[:10]),
            ("creates missing", self.creates_missing[:10]),
        ):
            if items:
                lines.append(f"  {name} (first ones): {items}")
        return "\n".join(lines)


def read_witness(path: Path) -> list[Line]:
    lines = []
    for raw in path.read_text(errors="replace").splitlines():
        parts = raw.split()
        if len(parts) != 6:
            continue
        kind, job, scheduled, attempt, clock, pid = parts
        at = datetime.fromisoformat(scheduled.replace("Z", "+00:00")).timestamp()
        lines.append(Line(kind, job, at, int(attempt), float(clock), int(pid)))
    return lines


def implied_fires(body: dict[str, Any], begin: float, end: float) -> list[float]:
    step = {"* * * * * *": 1, "*/3 * * * * *": 3, "*/5 * * * * *": 5, "*/2 * * * * *": 2}[body["schedule"]]
    first = int(begin) + (-int(begin)) % step
    return [float(t) for t in range(first, int(end), step)]


def judge(cluster: ChaosCluster, load: Load, faults: list[Fault], window: tuple[float, float]) -> Report:
    lines = read_witness(cluster.witness)
    report = Report(window, faults)
    begin, end = window
    starts: dict[tuple[str, float], dict[int, list[Line]]] = defaultdict(lambda: defaultdict(list))
    seen: dict[tuple[str, float, int, int], list[Line]] = defaultdict(list)  # one run's lines
    for line in lines:
        if line.kind == "S":
            starts[(line.job, line.scheduled)][line.attempt].append(line)
            if line.clock < line.scheduled:
                report.early.append((line.job, line.scheduled, line.clock))
        seen[(line.job, line.scheduled, line.attempt, line.pid)].append(line)
    for (job, scheduled), attempts in starts.items():
        for attempt, runs in attempts.items():
            if len(runs) > 1:
                report.duplicated.append((job, scheduled, attempt))
        # A lost attempt's re-run, whether or not the lost one got as far as
        # its first line: a worker frozen at the fire instant is killed (by
        # its watchdog) before the command runs, and only attempt 2 starts.
        report.reruns += max(attempts) - 1
    # Every fire the schedules imply in the window ran (an attempt started).
    for job_id, body in load.jobs.items():
        if body.get("concurrency_policy") == "forbid":
            continue  # forbid: a fire due while one runs is skipped, by design
        for at in implied_fires(body, begin, end):
            report.expected += 1
            if (job_id, at) not in starts:
                report.lost.append((job_id, at))
    # One run's life: its first line to its last (beats every 0.5 s).
    lives: dict[tuple[str, float], list[tuple[float, float, int]]] = defaultdict(list)
    by_job: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for (job, scheduled, attempt, _pid), run_lines in seen.items():
        first = min(x.clock for x in run_lines)
        last = max(x.clock for x in run_lines)
        lives[(job, scheduled)].append((first, last, attempt))
        by_job[job].append((first, last, scheduled))
    for fire, tries in lives.items():  # attempts of one fire never overlap
        tries.sort()
        for one, next_one in zip(tries, tries[1:], strict=False):
            if next_one[0] < one[1]:  # started before the other's last sign of life
                report.live_twice.append(fire)
    forbid = {j for j, b in load.jobs.items() if b.get("concurrency_policy") == "forbid"}
    for job in forbid:  # a forbid job's runs never overlap, whatever their fires
        ordered = sorted(by_job.get(job, []))
        for run, next_run in zip(ordered, ordered[1:], strict=False):
            if next_run[0] < run[1]:
                report.forbid_overlaps.append((job, run[2], next_run[2]))
    # Acknowledged creates exist and ran.
    report.creates_acknowledged = len(load.acknowledged)
    report.create_failures = load.create_failures
    with cluster.api(timeout=30) as api:
        for job_id, due in load.acknowledged.items():
            if api.get(f"/jobs/{job_id}").status_code != 200 or (job_id, due) not in starts:
                report.creates_missing.append(job_id)
    # How long firing stopped after each fault: the latest start of the
    # every-second fires due in the 10 s after it began.
    every_second = {j for j, b in load.jobs.items() if b["schedule"] == "* * * * * *"}
    for i, f in enumerate(faults):
        late = [
            min(r.clock for r in runs[min(runs)]) - at
            for (job, at), runs in starts.items()
            if job in every_second and f.at <= at < f.at + 10
        ]
        report.gaps[i] = max(late, default=0.0)
    report.claims_fenced = cluster.role_log_events("scheduler", "claim_fenced")
    up_log = (cluster.root / "up.log").read_text(errors="replace")
    report.restarts = [line.split(" ", 1)[1] for line in up_log.splitlines() if "started again" in line]
    return report


def run_chaos(root: Path, plan: Plan, say: Callable[[str], None] = print) -> Report:
    rng = random.Random(plan.seed)
    cluster = ChaosCluster(root)
    load = Load()
    stop_creating = threading.Event()
    try:
        cluster.start()
        create_jobs(cluster, plan, load)
        say(f"chaos: cluster up, {len(load.jobs)} jobs; seed {plan.seed}")
        creator = threading.Thread(
            target=keep_creating, args=(cluster, plan, load, stop_creating), daemon=True
        )
        creator.start()
        time.sleep(plan.settle)
        begin = time.time()
        faults: list[Fault] = []
        for kind in fault_order(plan, rng):
            fault = Fault(kind, "", time.time())
            fault.target = FAULTS[kind](cluster, rng, plan)
            fault.healed = time.time()
            faults.append(fault)
            say(f"  {kind} {fault.target} ({fault.healed - fault.at:.1f} s)")
            time.sleep(plan.settle)
        stop_creating.set()
        creator.join(10)
        window = (begin, time.time() - 2)
        _wait_for_reruns(cluster, load, window)
        return judge(cluster, load, faults, window)
    finally:
        stop_creating.set()
        cluster.stop()


def _wait_for_reruns(cluster: ChaosCluster, load: Load, window: tuple[float, float]) -> None:
    """Until every fire of the window has started (late ones and re-runs of
    lost ones take a few seconds more), or 60 s: what is still missing then
    is lost."""

    def all_started() -> bool:
        started = {(x.job, x.scheduled) for x in read_witness(cluster.witness) if x.kind == "S"}
        return all(
            (job, at) in started
            for job, body in load.jobs.items()
            if body.get("concurrency_policy") != "forbid"
            for at in implied_fires(body, *window)
        ) and all((job, due) in started for job, due in load.acknowledged.items())

    deadline = time.monotonic() + 60
    while not all_started() and time.monotonic() < deadline:
        time.sleep(1)  # the witness is read whole each time: not too often


@contextlib.contextmanager
def report_file(path: Path) -> Iterator[Callable[[str], None]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:

        def say(text: str) -> None:
            print(text, flush=True)
            out.write(text + "\n")
            out.flush()

        yield say


def as_json(report: Report) -> str:
    return json.dumps({"broken": report.broken, "faults": [f.__dict__ for f in report.faults]}, indent=2)
