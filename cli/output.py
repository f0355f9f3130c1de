"""How replies reach people and scripts: ``-o table`` (readable, coloured on
a terminal, plain when piped), ``-o json`` and ``-o yaml`` (the API's
objects, as the HTTP API sends them); times as a local time and "in 12 s";
durations; status colours."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table
from rich.text import Text

PIPED_WIDTH = 200  # wide enough that a piped table keeps each row on one line


class Format(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


OutputOption = Annotated[
    Format,
    typer.Option("--output", "-o", help="table for people; json or yaml: the API's objects, for scripts"),
]

STATUS_STYLES = {
    "succeeded": "green",
    "active": "green",
    "ok": "green",
    "running": "cyan",
    "scheduled": "blue",
    "paused": "yellow",
    "skipped": "yellow",
    "cancelled": "yellow",
    "completed": "dim",
    "deleted": "dim",
    "failed": "bold red",
    "timed_out": "bold red",
    "lost": "bold red",
}


def console(stderr: bool = False) -> Console:
    """A console that colours only a terminal (and never under NO_COLOR)."""
    file = sys.stderr if stderr else sys.stdout
    width = None if file.isatty() else int(os.environ.get("COLUMNS", PIPED_WIDTH))
    return Console(file=file, width=width, highlight=False, soft_wrap=False)


def emit(value: Any, fmt: Format, human: Callable[[Console], None]) -> None:
    """``value`` (API JSON) as JSON or YAML, or ``human`` draws it."""
    if fmt is Format.json:
        sys.stdout.write(json.dumps(value, indent=2) + "\n")
    elif fmt is Format.yaml:
        sys.stdout.write(to_yaml(value))
    else:
        human(console())


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]  # PyYAML ships no types
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None  # a multi-line command stays readable
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


class _Loader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no types
    """YAML 1.2's booleans (true, false) only: ``on:`` in ``after`` and
    ``notify`` is a key, not True, and ``yes``/``no``/``off`` stay strings."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_yaml(text: str) -> list[Any]:
    """Every document in ``text``."""
    return list(yaml.load_all(text, Loader=_Loader))


def to_yaml(value: Any) -> str:
    return str(
        yaml.dump(value, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False)
    )


def table(*headers: str, upper: bool = True) -> Table:
    """A plain table: upper-case headers, no borders, greppable when piped."""
    t = Table(box=None, pad_edge=False, show_edge=False, header_style="bold", padding=(0, 2, 0, 0))
    for h in headers:
        t.add_column(h.upper() if upper else h, no_wrap=True, overflow="ellipsis", max_width=60)
    return t


def status(value: str | None) -> Text:
    return Text(value or "-", style=STATUS_STYLES.get(value or "", ""))


# ------------------------------------------------------------------- time
def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def relative(when: datetime, now: datetime) -> str:
    """How far ``when`` is from ``now`` ("in 12 s", "3 min ago", "now"): the largest whole unit."""
    seconds = (when - now).total_seconds()
    if abs(seconds) < 1:
        return "now"
    amount = span(abs(seconds))
    return f"in {amount}" if seconds > 0 else f"{amount} ago"


def span(seconds: float) -> str:
    """12 s, 4 min, 3 h, 2 d: floored to the largest unit."""
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"


def duration(ms: float | None) -> str:
    """A run's length or lateness: 850 ms, 2.4 s, 3 min 5 s, 1 h 2 min."""
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms:.0f} ms"
    s = ms / 1000
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60)} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60)} min"


def local_time(when: datetime) -> str:
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def when(value: str | None, now: datetime | None = None) -> str:
    """An API time as local time plus how far it is: "2025-06-01 12:00:00 (in 12 s)"."""
    at = parse_time(value)
    if at is None:
        return "-"
    return f"{local_time(at)} ({relative(at, now or datetime.now(UTC))})"


def lines(items: Iterable[str]) -> str:
    return "\n".join(items)
