"""The chaos suite's faults, one at a time: processes paused or killed, a
worker cut off from its schedulers, Postgres and an etcd member killed."""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

from launch.devservices import wait_for
from tests.chaos.cluster import ChaosCluster, Plan, cut, uncut


@dataclass
class Fault:
    kind: str
    target: str
    at: float  # epoch seconds it began
    healed: float = 0.0


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
