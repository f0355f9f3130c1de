"""The user's commands (``jobs``, ``executions``, ``cluster``...): calls
through the Python SDK, replies printed as JSON."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from cronfleet.client import Client

CREDENTIALS = Path(
    os.environ.get("CRONFLEET_CREDENTIALS", "~/.config/cronfleet/credentials.json")
).expanduser()


def _grpc_addr() -> str:
    return os.environ.get("CRONFLEET_GRPC_ADDR", "127.0.0.1:50051")


def _client() -> Client:
    token = os.environ.get("CRONFLEET_TOKEN")
    if not token and CREDENTIALS.exists():
        token = json.loads(CREDENTIALS.read_text()).get("token")
    return Client(_grpc_addr(), token=token)


def _print(value: Any) -> None:
    if isinstance(value, str):
        print(value, end="" if value.endswith("\n") else "\n")
    elif value is not None:
        print(json.dumps(value, indent=2, default=str))


def run_client_command(args: argparse.Namespace) -> None:
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
            _executions_command(c, args)
        elif args.cmd == "dead-letters":
            _dead_letters_command(c, args)
        elif args.cmd == "preview":
            _print(c.preview_schedule(args.schedule, args.tz, args.n))


def _dead_letters_command(c: Client, args: argparse.Namespace) -> None:
    if args.action == "list":
        _print(c.list_dead_letters(job_id=args.job)["dead_letters"])
    elif args.action == "replay":
        _print(c.replay_dead_letter(args.id))
    elif args.action == "delete":
        c.delete_dead_letter(args.id)
        print(f"deleted {args.id}")


def _executions_command(c: Client, args: argparse.Namespace) -> None:
    if args.action == "list":
        _print(c.list_executions(job_id=args.job, status=args.status)["executions"])
    elif args.action == "get":
        _print(c.get_execution(args.id))
    elif args.action == "logs":
        _print(c.logs(args.id))
    elif args.action == "cancel":
        _print(c.cancel_execution(args.id))


def _job_from_flags(args: argparse.Namespace) -> dict[str, Any]:
    if args.file:
        return dict(json.loads(sys.stdin.read() if args.file == "-" else Path(args.file).read_text()))
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
    return spec


def _jobs_command(c: Client, args: argparse.Namespace) -> None:
    if args.action == "create":
        _print(c.create_job(idempotency_key=args.idempotency_key, **_job_from_flags(args)))
    elif args.action == "list":
        _print(c.list_jobs(status=args.status)["jobs"])
    elif args.action == "get":
        _print(c.get_job(args.id))
    elif args.action == "delete":
        c.delete_job(args.id, cancel_running=args.cancel_running)
        print(f"deleted {args.id}")
    elif args.action == "run":
        _print(c.run_job(args.id, idempotency_key=args.idempotency_key))
    elif args.action == "backfill":
        _print(c.backfill_job(args.id, args.start, args.end)["executions"])
    elif args.action == "pause":
        _print(c.pause_job(args.id))
    elif args.action == "resume":
        _print(c.resume_job(args.id))
