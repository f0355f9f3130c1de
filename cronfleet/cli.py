"""The ``cronfleet`` command: run a role, run a local cluster, or talk to one.

cronfleet up                      # local cluster (make run)
cronfleet migrate
cronfleet coordinator|scheduler|worker|gateway
cronfleet login --email E --password P
cronfleet jobs create --name hello --command 'echo hello' [--schedule '*/5 * * * * *']
cronfleet jobs list|get ID|delete ID|run ID|pause ID|resume ID
cronfleet executions list [--job ID] | get ID | logs ID
cronfleet cluster
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from cronfleet.config import Settings

CREDENTIALS = Path(
    os.environ.get("CRONFLEET_CREDENTIALS", "~/.config/cronfleet/credentials.json")
).expanduser()


def _grpc_addr() -> str:
    return os.environ.get("CRONFLEET_GRPC_ADDR", "127.0.0.1:50051")


def _client() -> Any:
    from cronfleet.client import Client

    token = os.environ.get("CRONFLEET_TOKEN")
    if not token and CREDENTIALS.exists():
        token = json.loads(CREDENTIALS.read_text()).get("token")
    return Client(_grpc_addr(), token=token)


def _print(value: Any) -> None:
    if isinstance(value, str):
        print(value, end="" if value.endswith("\n") else "\n")
    elif value is not None:
        print(json.dumps(value, indent=2, default=str))


async def _run_role(role: str, settings: Settings) -> None:
    from cronfleet import etcd
    from cronfleet.db import Database
    from cronfleet.logging import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)  # SIGTERM only asks; the role drains
    if role == "gateway":
        from gateway.app import run_gateway

        await run_gateway(settings, stop)
        return
    client = etcd.connect(settings.etcd_endpoints)
    db = Database(settings.database_url, max_size=8)
    await db.open(wait=False)
    try:
        if role == "coordinator":
            from coordinator.service import Coordinator

            await Coordinator(settings, db, client).run(stop)
        elif role == "scheduler":
            from scheduler.service import Scheduler

            await Scheduler(settings, db, client).run(stop)
        elif role == "worker":
            from cronfleet.logstore import S3LogStore, open_log_store

            runtime = _make_runtime(settings)
            logs = open_log_store(settings)
            if isinstance(logs, S3LogStore):
                await logs.ensure_bucket()
            from worker.service import Worker

            try:
                await Worker(settings, runtime, logs, client).run(stop)
            finally:
                await logs.close()
    finally:
        await db.close()
        try:
            await client.close()
        except Exception:  # closing a client whose server is gone is not an error
            pass


def _watch_children_with_pidfds() -> None:
    """asyncio's default child watcher starts a thread per child process;
    a pidfd watcher waits on all of them from the event loop."""
    watcher_cls = getattr(asyncio, "PidfdChildWatcher", None)
    if watcher_cls is None or sys.version_info >= (3, 12):  # 3.12+ already uses pidfds
        return
    watcher = watcher_cls()
    watcher.attach_loop(asyncio.get_running_loop())
    asyncio.set_child_watcher(watcher)


def _make_runtime(settings: Settings) -> Any:
    from worker.runtime import NoopRuntime, ProcessRuntime

    name = settings.runtime
    if name == "auto":
        from worker.docker_runtime import engine_answers

        name = "docker" if engine_answers() else "process"
    if name == "docker":
        from worker.docker_runtime import DockerRuntime

        return DockerRuntime(settings, settings.worker_id)
    if name == "process":
        _watch_children_with_pidfds()
        return ProcessRuntime(settings.kill_grace_seconds)
    if name == "noop":
        return NoopRuntime()
    raise SystemExit(f"unknown runtime {name!r}; known: auto, docker, process, noop")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="cronfleet", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    for role in ("coordinator", "scheduler", "worker", "gateway"):
        sub.add_parser(role, help=f"run a {role} (settings from CRONFLEET_* variables)")
    sub.add_parser("migrate", help="apply database migrations")
    up = sub.add_parser("up", help="start a local cluster in the foreground")
    up.add_argument("--schedulers", type=int, default=2)
    up.add_argument("--workers", type=int, default=2)
    up.add_argument("--coordinators", type=int, default=1)

    login = sub.add_parser("login")
    login.add_argument("--email", required=True)
    login.add_argument("--password", required=True)
    signup = sub.add_parser("signup")
    signup.add_argument("--name", required=True)
    signup.add_argument("--email", required=True)
    signup.add_argument("--password", required=True)
    sub.add_parser("logout")
    sub.add_parser("cluster")

    jobs = sub.add_parser("jobs").add_subparsers(dest="action", required=True)
    create = jobs.add_parser("create")
    create.add_argument("--name", required=True)
    create.add_argument("--command")
    create.add_argument("--step", action="append", metavar="NAME=COMMAND", help="repeatable")
    create.add_argument("--schedule")
    create.add_argument("--timezone")
    create.add_argument("--run-at")
    create.add_argument("--max-retries", type=int)
    create.add_argument("--timeout-seconds", type=int)
    create.add_argument("--priority", type=int)
    create.add_argument("--concurrency-policy")
    create.add_argument("--env", action="append", metavar="NAME=VALUE")
    create.add_argument("--file", help="a JSON job (or - for stdin) instead of flags")
    jobs.add_parser("list").add_argument("--status", default="")
    for action in ("get", "delete", "run", "pause", "resume"):
        jobs.add_parser(action).add_argument("id")

    execs = sub.add_parser("executions").add_subparsers(dest="action", required=True)
    el = execs.add_parser("list")
    el.add_argument("--job", default="")
    el.add_argument("--status", default="")
    for action in ("get", "logs", "cancel"):
        execs.add_parser(action).add_argument("id")

    args = parser.parse_args(argv)
    if args.cmd in ("coordinator", "scheduler", "worker", "gateway"):
        settings = Settings.from_env().with_defaults_for(args.cmd)
        asyncio.run(_run_role(args.cmd, settings))
        return
    if args.cmd == "migrate":
        from cronfleet.db.migrate import migrate

        applied = migrate(Settings.from_env().database_url)
        print(f"applied: {', '.join(applied) or 'nothing (up to date)'}")
        return
    if args.cmd == "up":
        from cronfleet.localcluster import run_local_cluster

        sys.exit(run_local_cluster(Settings.from_env(), args.coordinators, args.schedulers, args.workers))

    from cronfleet.client import ClientError

    try:
        _client_command(args)
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)


def _client_command(args: argparse.Namespace) -> None:
    with _client() as c:
        if args.cmd == "signup":
            _print(c.signup(args.name, args.email, args.password))
        elif args.cmd == "login":
            token = c.login(args.email, args.password)
            CREDENTIALS.parent.mkdir(parents=True, exist_ok=True)
            CREDENTIALS.write_text(json.dumps({"token": token, "grpc_addr": _grpc_addr()}))
            CREDENTIALS.chmod(0o600)
            print(f"logged in; token saved to {CREDENTIALS}")
        elif args.cmd == "logout":
            c.logout()
            CREDENTIALS.unlink(missing_ok=True)
        elif args.cmd == "cluster":
            _print(c.cluster())
        elif args.cmd == "jobs":
            _jobs_command(c, args)
        elif args.cmd == "executions":
            if args.action == "list":
                _print(c.list_executions(job_id=args.job, status=args.status)["executions"])
            elif args.action == "get":
                _print(c.get_execution(args.id))
            elif args.action == "logs":
                _print(c.logs(args.id))
            elif args.action == "cancel":
                _print(c.cancel_execution(args.id))


def _jobs_command(c: Any, args: argparse.Namespace) -> None:
    if args.action == "create":
        if args.file:
            spec = json.loads(sys.stdin.read() if args.file == "-" else Path(args.file).read_text())
        else:
            spec = {
                k: v
                for k, v in {
                    "name": args.name,
                    "command": args.command,
                    "schedule": args.schedule,
                    "timezone": args.timezone,
                    "run_at": args.run_at,
                    "max_retries": args.max_retries,
                    "timeout_seconds": args.timeout_seconds,
                    "priority": args.priority,
                    "concurrency_policy": args.concurrency_policy,
                }.items()
                if v is not None
            }
            if args.step:
                spec["steps"] = [dict(zip(("name", "run"), s.split("=", 1), strict=True)) for s in args.step]
            if args.env:
                spec["env"] = dict(e.split("=", 1) for e in args.env)
        _print(c.create_job(**spec))
    elif args.action == "list":
        _print(c.list_jobs(status=args.status)["jobs"])
    elif args.action == "get":
        _print(c.get_job(args.id))
    elif args.action == "delete":
        c.delete_job(args.id)
        print(f"deleted {args.id}")
    elif args.action == "run":
        _print(c.run_job(args.id))
    elif args.action == "pause":
        _print(c.pause_job(args.id))
    elif args.action == "resume":
        _print(c.resume_job(args.id))


if __name__ == "__main__":
    main()
