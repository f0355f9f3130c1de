"""``cronfleet dead-letters ...``: runs whose retries are spent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from cli.output import Format, OutputOption, console, emit
from cli.session import session
from cli.views import dead_letters_table

app = typer.Typer(
    help="Runs whose retries are spent: list, replay, discard.\n\nExample: cronfleet dead-letters list",
    no_args_is_help=True,
)

LetterArg = Annotated[str, typer.Argument(metavar="ID", help="the dead letter's id")]


@app.command("list", epilog="Example: cronfleet dead-letters list --job nightly -o json")
def list_dead_letters(
    ctx: typer.Context,
    job: Annotated[str, typer.Option(metavar="NAME|ID", help="only this job's")] = "",
    output: OutputOption = Format.table,
) -> None:
    """Dead letters, newest first."""
    c = session(ctx).client
    job_id = c.find_job(job)["id"] if job else ""
    letters = c.list_dead_letters(job_id=job_id)["dead_letters"]
    emit(letters, output, lambda out: out.print(dead_letters_table(letters, datetime.now(UTC))))


@app.command(epilog="Example: cronfleet dead-letters replay 17")
def replay(ctx: typer.Context, letter: LetterArg, output: OutputOption = Format.table) -> None:
    """Run it again: a new attempt chain (trigger "replay")."""
    execution = session(ctx).client.replay_dead_letter(letter)
    emit(execution, output, lambda out: out.print(f"replayed as execution {execution['id']}"))


@app.command(epilog="Example: cronfleet dead-letters delete 17")
def delete(ctx: typer.Context, letter: LetterArg) -> None:
    """Discard it."""
    session(ctx).client.delete_dead_letter(letter)
    console().print(f"deleted dead letter {letter}")
