"""The ``cronfleet`` command: run a role, run a local cluster, or talk to one.

cronfleet up                      # local cluster (make run)
cronfleet migrate
cronfleet coordinator|scheduler|worker|gateway
cronfleet login --email E --password P
cronfleet jobs create --name hello --command 'echo hello' [--schedule '*/5 * * * * *']
cronfleet jobs create --file job.json [--idempotency-key K]   # every field of API.md
cronfleet jobs list|get ID|delete ID [--cancel-running]|run ID|pause ID|resume ID
cronfleet jobs backfill ID --from TIME --to TIME
cronfleet executions list [--job ID] | get ID | logs ID | cancel ID
cronfleet dead-letters list [--job ID] | replay ID | delete ID
cronfleet preview "0 0 12 * * ?" [--tz Asia/Tokyo] [-n 5]
cronfleet cluster
"""

from __future__ import annotations

import argparse
import sys

from cronfleet.config import Settings

ROLE_NAMES = ("coordinator", "scheduler", "worker", "gateway")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cronfleet", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    for role in ROLE_NAMES:
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
    create.add_argument("--name", help="required unless --file gives it")
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
    create.add_argument("--idempotency-key", help="a retry with the same key creates nothing new")
    jobs.add_parser("list").add_argument("--status", default="")
    for action in ("get", "pause", "resume"):
        jobs.add_parser(action).add_argument("id")
    delete = jobs.add_parser("delete")
    delete.add_argument("id")
    delete.add_argument("--cancel-running", action="store_true", help="also stop its running runs")
    run = jobs.add_parser("run")
    run.add_argument("id")
    run.add_argument("--idempotency-key")
    backfill = jobs.add_parser("backfill", help="one run per past fire in [--from, --to]")
    backfill.add_argument("id")
    backfill.add_argument("--from", dest="start", required=True, help="RFC 3339 time")
    backfill.add_argument("--to", dest="end", required=True, help="RFC 3339 time")

    execs = sub.add_parser("executions").add_subparsers(dest="action", required=True)
    el = execs.add_parser("list")
    el.add_argument("--job", default="")
    el.add_argument("--status", default="")
    for action in ("get", "logs", "cancel"):
        execs.add_parser(action).add_argument("id")

    dead = sub.add_parser("dead-letters", help="runs whose retries are spent")
    dead_actions = dead.add_subparsers(dest="action", required=True)
    dead_actions.add_parser("list").add_argument("--job", default="")
    for action in ("replay", "delete"):
        dead_actions.add_parser(action).add_argument("id")

    preview = sub.add_parser("preview", help="the next fires of a schedule, in words, with warnings")
    preview.add_argument("schedule")
    preview.add_argument("--tz", default="UTC")
    preview.add_argument("-n", type=int, default=5)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.cmd in ROLE_NAMES:
        from launch.roles import run_role

        run_role(args.cmd, Settings.from_env().with_defaults_for(args.cmd))
        return
    if args.cmd == "migrate":
        from cronfleet.db.migrate import migrate

        applied = migrate(Settings.from_env().database_url)
        print(f"applied: {', '.join(applied) or 'nothing (up to date)'}")
        return
    if args.cmd == "up":
        from launch.localcluster import run_local_cluster

        sys.exit(run_local_cluster(Settings.from_env(), args.coordinators, args.schedulers, args.workers))

    from cronfleet.client import ClientError
    from launch.commands import run_client_command

    try:
        run_client_command(args)
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
