"""The benchmark: `make bench` (or `python -m bench [--quick] [--only NAME ...]`).

Prints figures against DESIGN.md's targets, and writes them with a plot to
``bench/results/`` (``bench.json``, ``bench.png``). With ``--peers`` it runs
issue 14's workloads through cronfleet and its peers instead (``bench/peers``). Lateness is the command's own
clock at its start minus its scheduled time, read from the command's output.
Every scenario runs on real parts: Postgres, etcd, the cluster's processes,
and Docker when an engine answers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal

from bench.docker_pool import scenario_docker_overload, scenario_docker_pool
from bench.harness import FIGURES, ROOT, Services, cluster, insert_due_jobs
from bench.latency import scenario_lateness, scenario_same_second
from bench.record import RESULTS_DIR, read_machine
from bench.throughput import scenario_claim, scenario_stats, scenario_throughput


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument("--quick", action="store_true", help="smaller runs")
    parser.add_argument(
        "--only",
        nargs="*",
        default=[],
        help="claim stats process docker docker-overload throughput-noop throughput-process failover; "
        "memory (not in the default set: 1M schedules stored, then --soak-minutes of load, 3-4 min)",
    )
    parser.add_argument(
        "--soak-minutes",
        type=float,
        default=None,
        help="memory: minutes of load sampled (default 1, --quick 0.5; issue 14's soak is 10)",
    )
    parser.add_argument(
        "--memory-rate",
        type=int,
        default=None,
        help="memory: every-second jobs, so fires/s asked (default 10,000 as issue 14 states, --quick 1,000)",
    )
    parser.add_argument(
        "--peers",
        nargs="*",
        default=None,
        metavar="PEER",
        help="run issue 14's workloads through cronfleet and these peers (none named: all of "
        "apscheduler celery pgqueuer); --only then picks workloads: same-second sustained-noop "
        "sustained-process",
    )
    parser.add_argument(
        "--pg-statements",
        action="store_true",
        help="load pg_stat_statements and print the top statements of each throughput run",
    )
    parser.add_argument("--rounds", type=int, default=2, help="with --peers: rounds, A B A B")
    parser.add_argument(
        "--keep-state",
        action="store_true",
        help="keep the state folder (Postgres, clusters, run logs; ~140 MB) after a run that "
        "completes; a run that fails always keeps it",
    )
    parser.add_argument(
        "--sizes",
        default=None,
        metavar="SAME,NOOP,PROCESS",
        help="with --peers: jobs due in the same second, no-op runs, process runs "
        "(default 1000,50000,3000; --quick 200,10000,1000)",
    )
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so the clusters, Postgres and etcd stop.
    signal.signal(signal.SIGTERM, _interrupt)
    completed = True
    if args.peers is not None:
        completed = run_peer_bench(args.peers, args.only, args.quick, args.rounds, args.sizes)
    else:
        run_bench(args)
    if args.keep_state or not completed:
        print(f"  state kept in {ROOT}", flush=True)
    else:  # every run left ~140 MB in the temporary folder
        shutil.rmtree(ROOT, ignore_errors=True)


def run_bench(args: argparse.Namespace) -> None:
    from worker.docker_runtime import engine_answers

    wanted = set(args.only) or {
        "claim",
        "stats",
        "process",
        "docker",
        "docker-overload",
        "throughput-noop",
        "throughput-process",
        "failover",
    }
    if not engine_answers():
        print("  (no Docker engine answers: docker scenarios skipped)")
        wanted -= {"docker", "docker-overload"}
    print(f"cronfleet benchmark on {os.cpu_count()} cores; state in {ROOT}", flush=True)
    read_machine()
    with Services(args.pg_statements) as services:
        if "claim" in wanted:
            scenario_claim(services, args.quick)
        if "stats" in wanted:
            scenario_stats(services, args.quick)
        if "process" in wanted:
            scenario_lateness(services, "process", args.quick)
        if "throughput-noop" in wanted:
            scenario_throughput(services, "noop", 10_000 if args.quick else 100_000)
        if "throughput-process" in wanted:
            scenario_throughput(services, "process", 1_000 if args.quick else 3_000)
        if "docker" in wanted:
            scenario_lateness(services, "docker", args.quick)
            scenario_docker_pool(services, args.quick)
        if "docker-overload" in wanted:
            scenario_docker_overload(services, args.quick)
        if "failover" in wanted:
            from bench.failover import scenario_failover

            scenario_failover(services, cluster, insert_due_jobs, FIGURES, args.quick)
        if "memory" in wanted:
            from bench.memory import scenario_memory

            scenario_memory(
                services, cluster, insert_due_jobs, FIGURES, args.quick, args.soak_minutes, args.memory_rate
            )
    for path in FIGURES.write(RESULTS_DIR, "bench"):
        print(f"  wrote {path}", flush=True)


def run_peer_bench(
    peers: list[str], only: list[str], quick: bool, rounds: int, sizes_arg: str | None
) -> bool:
    """cronfleet (this bench's scenarios, a fresh cluster each) beside its peers, same run;
    False if a measurement failed (reported, and the others still ran)."""
    from bench.peers.driver import FULL, QUICK, CronfleetSystem, Sizes, make_peers, run_peers
    from bench.peers.figures import WORKLOADS
    from bench.record import meta

    workloads = [w for w in WORKLOADS if not only or w.replace("_", "-") in only]
    sizes = QUICK if quick else FULL
    if sizes_arg:
        sizes = Sizes(*(int(v) for v in sizes_arg.split(",")))
    print(f"cronfleet and its peers on {os.cpu_count()} cores, {rounds} rounds; state in {ROOT}", flush=True)
    read_machine()
    with Services() as services:
        cronfleet = CronfleetSystem(
            lambda n: scenario_same_second(services, n),
            lambda runtime, n: scenario_throughput(services, runtime, n).started_to_ended,
        )
        systems = make_peers(peers, services.pg.create_database)
        measured = run_peers(
            cronfleet,
            systems,
            sizes,
            rounds,
            workloads,
            RESULTS_DIR,
            meta(),
        )
    return len(measured) == rounds * len(workloads) * (1 + len(systems))


if __name__ == "__main__":
    main()
