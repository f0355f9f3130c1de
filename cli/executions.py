"""``cronfleet executions ...`` and ``cronfleet logs``: runs as tables, a
run's output (whole, or followed live until it ends), cancel; and the
watch loop behind ``--watch``."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TextIO

import typer
from rich.console import RenderableType
from rich.live import Live

from cli.output import Format, OutputOption, console, emit
from cli.session import session
from cli.views import execution_summary, executions_table
from cronfleet.client import Client

WATCH_INTERVAL = 1.0  # seconds between refreshes of a watched table

app = typer.Typer(
    help="Runs of your jobs: list, read, output, cancel.\n\nExample: cronfleet executions list --job nightly",
    no_args_is_help=True,
)

ExecutionArg = Annotated[str, typer.Argument(metavar="EXECUTION", help="the execution's id")]
FollowOption = Annotated[
    bool, typer.Option("--follow", "-f", help="stream the output live until the run ends")
]


def follow_to_stdout(c: Client, execution_id: str, to: TextIO | None = None) -> None:
    """Copy the run's output to stdout (or ``to``) as it is written, until the run ends."""
    out = to or sys.stdout
    for text in c.follow_logs(execution_id):
        out.write(text)
        out.flush()


def watch(
    fetch: Callable[[], Any], draw: Callable[[Any], RenderableType], interval: float = WATCH_INTERVAL
) -> None:
    """Draw ``fetch()`` again every ``interval`` until Ctrl-C: in place on a
    terminal (Rich Live); piped, a new table each time the data changes.

    Ctrl-C only sets a flag: a KeyboardInterrupt raised inside a gRPC call in
    flight can leave the channel unable to close (grpc/grpc#19973), and the
    process then hangs on its way out. The loop ends after that call instead."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    out = console()
    try:
        if out.is_terminal:
            with Live(draw(fetch()), console=out, auto_refresh=False) as live:
                while not stop.wait(interval):
                    live.update(draw(fetch()), refresh=True)
            return
        last = None
        while not stop.is_set():
            data = fetch()
            if data != last:
                out.print(draw(data))
                out.print()
                sys.stdout.flush()
                last = data
            stop.wait(interval)
    finally:
        signal.signal(signal.SIGINT, previous)


@app.command("list", epilog="Example: cronfleet executions list --job nightly --status failed")
def list_executions(
    ctx: typer.Context,
    job: Annotated[str, typer.Option(metavar="NAME|ID", help="only this job's runs")] = "",
    status: Annotated[str, typer.Option(help="only runs with this status")] = "",
    limit: Annotated[int, typer.Option("--limit", "-n", help="the latest N runs")] = 50,
    watch_: Annotated[bool, typer.Option("--watch", "-w", help="keep the table fresh until Ctrl-C")] = False,
    output: OutputOption = Format.table,
) -> None:
    """Runs, newest first: status, attempt, trigger, scheduled, lateness, duration, exit code."""
    c = session(ctx).client
    job_id = c.find_job(job)["id"] if job else ""

    def fetch() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = c.list_executions(job_id=job_id, status=status, limit=limit)[
            "executions"
        ]
        return found

    if watch_ and output is Format.table:
        watch(fetch, lambda runs: executions_table(runs, datetime.now(UTC)))
        return
    runs = fetch()
    emit(runs, output, lambda out: out.print(executions_table(runs, datetime.now(UTC))))


@app.command(epilog="Example: cronfleet executions get 1234 -o yaml")
def get(ctx: typer.Context, execution: ExecutionArg, output: OutputOption = Format.table) -> None:
    """One run: when, how long, how it ended."""
    found = session(ctx).client.get_execution(execution)
    emit(found, output, lambda out: out.print(execution_summary(found, datetime.now(UTC))))


@app.command(epilog="Example: cronfleet executions logs 1234 -f")
def logs(ctx: typer.Context, execution: ExecutionArg, follow: FollowOption = False) -> None:
    """A run's console output (live with -f, until the run ends)."""
    show_logs(ctx, execution, follow)


@app.command(epilog="Example: cronfleet executions cancel 1234")
def cancel(ctx: typer.Context, execution: ExecutionArg, output: OutputOption = Format.table) -> None:
    """Stop a run that has not ended."""
    found = session(ctx).client.cancel_execution(execution)
    emit(found, output, lambda out: out.print(f"cancelling execution {found['id']} ({found['status']})"))


def show_logs(ctx: typer.Context, execution: str, follow: bool) -> None:
    c = session(ctx).client
    if follow:
        follow_to_stdout(c, execution)
        return
    text = c.logs(execution)
    sys.stdout.write(text)
