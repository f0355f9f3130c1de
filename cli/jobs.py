"""``cronfleet jobs ...``: create, list, read, fire (and wait), follow the
runs, pause, resume, delete, backfill. A job is named by name or id."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from cli.executions import follow_to_stdout, watch
from cli.output import Format, OutputOption, console, emit, load_yaml
from cli.session import BadInput, session
from cli.views import executions_table, job_summary, jobs_table

app = typer.Typer(
    help="Create, list and run jobs. A job is named by its name or its id.\n\n"
    "Example: cronfleet jobs list; cronfleet jobs run nightly --wait",
    no_args_is_help=True,
)

JobArg = Annotated[str, typer.Argument(metavar="NAME|ID", help="the job's name or id")]


def _job_from_flags(
    values: dict[str, Any],
    steps: list[str] | None,
    env: list[str] | None,
    secrets: list[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    spec = {k: v for k, v in values.items() if v is not None}
    if steps:
        bad = [s for s in steps if "=" not in s]
        if bad:
            raise BadInput(f"step: {bad[0]!r} must be NAME=COMMAND")
        spec["steps"] = [dict(zip(("name", "run"), s.split("=", 1), strict=True)) for s in steps]
    if env:
        bad = [e for e in env if "=" not in e]
        if bad:
            raise BadInput(f"env: {bad[0]!r} must be NAME=VALUE")
        spec["env"] = dict(e.split("=", 1) for e in env)
    for entry in secrets or ():
        name, given, value = entry.partition("=")
        if not given:  # NAME: the value of $NAME here, kept out of shell history
            if environ is None or name not in environ:
                raise BadInput(f"secret: {name!r}: give NAME=VALUE, or set ${name} for NAME alone")
            value = environ[name]
        spec.setdefault("env", {})[name] = {"value": value, "secret": True}
    return spec


def _read_job_file(path: str) -> dict[str, Any]:
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    try:
        documents = load_yaml(text)  # JSON is YAML too
    except yaml.YAMLError as exc:
        raise BadInput(f"{path}: {' '.join(str(exc).split())}") from None
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise BadInput(f"{path}: must hold one job (an object); for several, use cronfleet apply -f")
    return dict(documents[0])


@app.command(epilog="Example: cronfleet jobs create --name tick --command date --schedule '*/5 * * * * *'")
def create(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option(help="required unless --file gives it")] = None,
    command: Annotated[str | None, typer.Option(help="run with sh -c")] = None,
    step: Annotated[list[str] | None, typer.Option(metavar="NAME=COMMAND", help="repeatable")] = None,
    schedule: Annotated[str | None, typer.Option(help="cron text; none: run once")] = None,
    timezone: Annotated[str | None, typer.Option(help="IANA name, default UTC")] = None,
    run_at: Annotated[str | None, typer.Option(help="RFC 3339 time for a one-off")] = None,
    max_retries: Annotated[int | None, typer.Option()] = None,
    timeout_seconds: Annotated[int | None, typer.Option()] = None,
    priority: Annotated[int | None, typer.Option(help="0-9, higher first")] = None,
    concurrency_policy: Annotated[str | None, typer.Option(help="allow | forbid | replace")] = None,
    env: Annotated[list[str] | None, typer.Option(metavar="NAME=VALUE", help="repeatable")] = None,
    secret: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAME[=VALUE]",
            help="a secret env value: sealed at rest, *** in every reply; NAME alone takes $NAME "
            "from here (repeatable)",
        ),
    ] = None,
    file: Annotated[
        str | None, typer.Option(help="a job as JSON or YAML (- for stdin) instead of flags")
    ] = None,
    idempotency_key: Annotated[
        str | None, typer.Option(help="a retry with the same key creates nothing")
    ] = None,
    output: OutputOption = Format.table,
) -> None:
    """Create one job from flags or a file (every field of the API)."""
    flags = {
        "name": name,
        "command": command,
        "schedule": schedule,
        "timezone": timezone,
        "run_at": run_at,
        "max_retries": max_retries,
        "timeout_seconds": timeout_seconds,
        "priority": priority,
        "concurrency_policy": concurrency_policy,
    }
    spec = _read_job_file(file) if file else _job_from_flags(flags, step, env, secret, session(ctx).env)
    job = session(ctx).client.create_job(idempotency_key=idempotency_key, **spec)

    def show(out: Any) -> None:
        out.print(f"created [bold]{job['name']}[/] ({job['id']})")
        for warning in job.get("warnings") or []:
            out.print(f"[yellow]warning:[/] {warning}")

    emit(job, output, show)


@app.command("list", epilog="Example: cronfleet jobs list --status paused -o json")
def list_jobs(
    ctx: typer.Context,
    status: Annotated[str, typer.Option(help="active | paused | completed | deleted")] = "",
    name: Annotated[str, typer.Option("--name", help="only names containing this (any case)")] = "",
    output: OutputOption = Format.table,
) -> None:
    """Your jobs: schedule in words, next run, status, last result."""
    jobs = session(ctx).client.all_jobs(status, q=name, recent=1)
    emit(jobs, output, lambda out: out.print(jobs_table(jobs, datetime.now(UTC))))


@app.command(epilog="Example: cronfleet jobs get nightly")
def get(
    ctx: typer.Context,
    job: JobArg,
    runs: Annotated[int, typer.Option("--runs", "-n", help="how many of the last runs to show")] = 5,
    output: OutputOption = Format.table,
) -> None:
    """A job in a few lines, with its last runs."""
    c = session(ctx).client
    found = c.find_job(job)
    if output is not Format.table:
        emit(found, output, lambda out: None)
        return
    last = c.list_executions(job_id=found["id"], limit=runs)["executions"] if runs > 0 else []
    console().print(job_summary(found, last, datetime.now(UTC)))


@app.command(epilog="Example: cronfleet jobs run nightly --wait   # exits with the run's exit code")
def run(
    ctx: typer.Context,
    job: JobArg,
    wait: Annotated[
        bool, typer.Option("--wait", "-w", help="wait for the run, show its output, exit with its exit code")
    ] = False,
    idempotency_key: Annotated[
        str | None, typer.Option(help="a retry with the same key fires nothing")
    ] = None,
    output: OutputOption = Format.table,
) -> None:
    """Fire a job now, outside its schedule."""
    c = session(ctx).client
    found = c.find_job(job)
    execution = c.run_job(found["id"], idempotency_key=idempotency_key)
    if not wait:
        emit(execution, output, lambda out: out.print(f"fired {found['name']}: execution {execution['id']}"))
        return
    err = console(stderr=True)
    err.print(f"[dim]fired {found['name']}: execution {execution['id']}; waiting for it[/]")
    # With -o json|yaml, stdout holds the execution alone; the output goes to stderr.
    follow_to_stdout(c, execution["id"], None if output is Format.table else sys.stderr)
    ended = c.get_execution(execution["id"])
    if output is not Format.table:
        emit(ended, output, lambda out: None)
    code = ended.get("exit_code")
    err.print(
        f"[dim]execution {ended['id']} {ended['status']}"
        + (f" (exit {code})" if code is not None else "")
        + "[/]"
    )
    raise typer.Exit(code if code is not None else (0 if ended["status"] == "succeeded" else 1))


@app.command(epilog="Example: cronfleet jobs runs nightly --watch")
def runs(
    ctx: typer.Context,
    job: JobArg,
    watch_: Annotated[bool, typer.Option("--watch", "-w", help="keep the table fresh until Ctrl-C")] = False,
    limit: Annotated[int, typer.Option("--limit", "-n", help="the latest N runs")] = 20,
    status: Annotated[str, typer.Option(help="only runs with this status")] = "",
    output: OutputOption = Format.table,
) -> None:
    """A job's runs, newest first: status, attempt, trigger, lateness, duration, exit code."""
    c = session(ctx).client
    job_id = c.find_job(job)["id"]

    def fetch() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = c.list_executions(job_id=job_id, status=status, limit=limit)[
            "executions"
        ]
        return found

    if watch_ and output is Format.table:
        watch(fetch, lambda found: executions_table(found, datetime.now(UTC)))
        return
    found = fetch()
    emit(found, output, lambda out: out.print(executions_table(found, datetime.now(UTC))))


@app.command(epilog="Example: cronfleet jobs delete nightly --cancel-running")
def delete(
    ctx: typer.Context,
    job: JobArg,
    cancel_running: Annotated[bool, typer.Option(help="also stop its running runs")] = False,
) -> None:
    """Delete a job: no further fires; its history stays."""
    c = session(ctx).client
    found = c.find_job(job)
    c.delete_job(found["id"], cancel_running=cancel_running)
    console().print(f"deleted {found['name']} ({found['id']})")


@app.command(epilog="Example: cronfleet jobs pause nightly")
def pause(ctx: typer.Context, job: JobArg, output: OutputOption = Format.table) -> None:
    """Stop a job firing until it is resumed."""
    c = session(ctx).client
    paused = c.pause_job(c.find_job(job)["id"])
    emit(paused, output, lambda out: out.print(f"paused {paused['name']}"))


@app.command(epilog="Example: cronfleet jobs resume nightly")
def resume(ctx: typer.Context, job: JobArg, output: OutputOption = Format.table) -> None:
    """Let a paused job fire again (missed fires follow its misfire_policy)."""
    c = session(ctx).client
    resumed = c.resume_job(c.find_job(job)["id"])
    emit(resumed, output, lambda out: out.print(f"resumed {resumed['name']}"))


@app.command(
    epilog="Example: cronfleet jobs backfill nightly --from 2025-06-01T00:00:00Z --to 2025-06-03T00:00:00Z"
)
def backfill(
    ctx: typer.Context,
    job: JobArg,
    start: Annotated[str, typer.Option("--from", help="RFC 3339 time")],
    end: Annotated[str, typer.Option("--to", help="RFC 3339 time")],
    output: OutputOption = Format.table,
) -> None:
    """One run for each past fire in [--from, --to] that has none."""
    c = session(ctx).client
    created = c.backfill_job(c.find_job(job)["id"], start, end)["executions"]
    emit(created, output, lambda out: out.print(executions_table(created, datetime.now(UTC))))
