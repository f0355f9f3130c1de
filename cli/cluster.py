"""``cronfleet cluster``, ``cronfleet preview``: the cluster at a glance, and
a schedule tried before a job uses it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.console import Console
from rich.text import Text

from cli.output import Format, OutputOption, emit, local_time, parse_time, relative, table
from cli.session import BadInput, session
from cli.views import cluster_view


def cluster(ctx: typer.Context, output: OutputOption = Format.table) -> None:
    """The leader and its epoch, each scheduler with its shards, each worker's load and runtime.

    Example: cronfleet cluster
    """
    found = session(ctx).client.cluster()
    emit(found, output, lambda out: out.print(cluster_view(found)))


def preview(
    ctx: typer.Context,
    schedule: Annotated[str, typer.Argument(help="cron text (5, 6 or 7 fields, or @daily, @every 90s)")],
    tz: Annotated[str, typer.Option("--tz", help="the IANA timezone the schedule runs in")] = "UTC",
    count: Annotated[int, typer.Option("-n", "--count", help="how many fires to show")] = 5,
    output: OutputOption = Format.table,
) -> None:
    """A schedule in words, its next fires (in its zone and here), and what may surprise you.

    Example: cronfleet preview "0 0 12 * * ?" --tz Asia/Tokyo -n 5
    """
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadInput(f"tz: unknown timezone {tz!r}") from None
    found = session(ctx).client.preview_schedule(schedule, tz, count)
    fires = [t for t in (parse_time(v) for v in found["next"]) if t is not None]
    reply = found | {"next_local": [t.astimezone(zone).isoformat() for t in fires]}
    emit(reply, output, lambda out: _draw_preview(out, schedule, tz, reply, fires))


def _draw_preview(out: Console, schedule: str, tz: str, reply: dict[str, Any], fires: list[datetime]) -> None:
    out.print(Text.assemble((reply["description"] or schedule, "bold"), (f"   {schedule!r} in {tz}", "dim")))
    here = datetime.now().astimezone().tzname() or "local"
    t = table(tz, f"here ({here})", "when", upper=False)
    now = datetime.now(UTC)
    for at in fires:
        t.add_row(
            at.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S %Z"), local_time(at), relative(at, now)
        )
    out.print(t if fires else Text("never fires", style="bold red"))
    for warning in reply["warnings"]:
        out.print(Text.assemble(("warning: ", "yellow"), warning))
