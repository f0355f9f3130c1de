"""What people see: the API's objects drawn as Rich tables and summaries.
Pure functions of the data and the time now."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from cli.output import duration, parse_time, relative, status, table, when

Reply = dict[str, Any]


def schedule_of(job: Reply) -> str:
    if job.get("schedule"):
        return str(job["schedule"])
    return f"once at {job['run_at']}" if job.get("run_at") else "once"


def last_result(job: Reply, now: datetime) -> Text:
    """The latest run of a job listed with ``recent=1``: "failed (exit 2) 3 min ago"."""
    runs = job.get("recent_runs") or []
    if not runs:
        return Text("-", style="dim")
    run = runs[0]
    text = status(run["status"])
    if run.get("exit_code") not in (None, 0):
        text.append(f" (exit {run['exit_code']})")
    at = parse_time(run.get("finished_at") or run.get("scheduled_at"))
    if at is not None:
        text.append(f" {relative(at, now)}", style="dim")
    return text


def jobs_table(jobs: list[Reply], now: datetime) -> Table:
    t = table("name", "schedule", "description", "timezone", "next run", "status", "last result")
    for job in jobs:
        t.add_row(
            job["name"],
            schedule_of(job),
            job.get("schedule_description") or "-",
            job.get("timezone", "UTC"),
            when(job.get("next_run_at"), now) if job.get("status") == "active" else "-",
            status(job.get("status")),
            last_result(job, now),
        )
    return t


def _run_length(run: Reply) -> float | None:
    started, finished = parse_time(run.get("started_at")), parse_time(run.get("finished_at"))
    return (finished - started).total_seconds() * 1000 if started and finished else None


def executions_table(runs: list[Reply], now: datetime) -> Table:
    t = table("id", "status", "attempt", "trigger", "scheduled", "lateness", "duration", "exit code")
    for run in runs:
        exit_code = run.get("exit_code")
        t.add_row(
            str(run["id"]),
            status(run.get("status")),
            str(run.get("attempt", "")),
            run.get("trigger") or "-",
            when(run.get("scheduled_at"), now),
            duration(run.get("lateness_ms")),
            duration(_run_length(run)),
            "-" if exit_code is None else str(exit_code),
        )
    return t


def _fields(rows: list[tuple[str, Any]]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    for key, value in rows:
        if value not in (None, "", [], {}):
            grid.add_row(key, value if isinstance(value, Text) else str(value))
    return grid


def _what(job: Reply) -> str:
    if job.get("command"):
        return str(job["command"])
    if job.get("steps"):
        return "; ".join(f"{s['name']}: {s['run']}" for s in job["steps"])
    http = job.get("http") or {}
    return f"{http.get('method', 'GET')} {http.get('url', '')}"


def _env_value(value: Any) -> str:
    """A secret as the API shows it ({"value": "***", "secret": true}) reads ***."""
    return str(value.get("value")) if isinstance(value, dict) else str(value)


def job_summary(job: Reply, runs: list[Reply], now: datetime) -> RenderableType:
    """``jobs get``: the job in a few lines, then its last runs."""
    title = Text.assemble((job["name"], "bold"), "  ", status(job.get("status")), (f"  {job['id']}", "dim"))
    described = job.get("schedule_description")
    rows: list[tuple[str, Any]] = [
        ("schedule", schedule_of(job) + (f"  ({described})" if described else "")),
        ("timezone", job.get("timezone")),
        ("next run", when(job.get("next_run_at"), now) if job.get("status") == "active" else None),
        ("runs", _what(job)),
        ("image", job.get("image")),
        ("env", ", ".join(f"{k}={_env_value(v)}" for k, v in (job.get("env") or {}).items())),
        (
            "policy",
            f"retries {job.get('max_retries', 0)}, timeout {job.get('timeout_seconds')} s, "
            f"priority {job.get('priority')}, concurrency {job.get('concurrency_policy')}",
        ),
        ("after", ", ".join(f"{u['job_id']} on {u.get('on', 'success')}" for u in job.get("after") or [])),
        ("created", when(job.get("created_at"), now)),
        ("updated", f"{when(job.get('updated_at'), now)}, version {job.get('version')}"),
        ("paused", when(job.get("paused_at"), now) if job.get("paused_at") else None),
        ("warnings", "\n".join(job.get("warnings") or [])),
    ]
    parts: list[RenderableType] = [title, _fields(rows), Text()]
    if runs:
        parts += [Text("Last runs", style="bold"), executions_table(runs, now)]
    else:
        parts.append(Text("No runs yet.", style="dim"))
    return Group(*parts)


def execution_summary(run: Reply, now: datetime) -> RenderableType:
    rows: list[tuple[str, Any]] = [
        ("job", run.get("job_id")),
        ("attempt", run.get("attempt")),
        ("trigger", run.get("trigger")),
        ("scheduled", when(run.get("scheduled_at"), now)),
        ("started", when(run.get("started_at"), now) if run.get("started_at") else None),
        ("finished", when(run.get("finished_at"), now) if run.get("finished_at") else None),
        ("lateness", duration(run.get("lateness_ms")) if run.get("lateness_ms") is not None else None),
        ("duration", duration(_run_length(run)) if run.get("finished_at") else None),
        ("exit code", run.get("exit_code")),
        ("worker", run.get("worker_id")),
        ("error", run.get("error")),
        ("steps", ", ".join(f"{s['name']} exit {s.get('exit_code', 0)}" for s in run.get("steps") or [])),
    ]
    title = Text.assemble((f"execution {run['id']}", "bold"), "  ", status(run.get("status")))
    return Group(title, _fields(rows))


def cluster_view(cluster: Reply) -> RenderableType:
    """Leader and epoch, each scheduler's shard count, each worker's load and runtime."""
    head = Text.assemble(
        "leader ",
        (cluster.get("leader") or "none", "bold"),
        f"  epoch {cluster.get('epoch', 0)}",
        ("  coordinators: " + ", ".join(cluster.get("coordinators") or []), "dim"),
    )
    schedulers = table("scheduler", "shards", "address")
    for s in cluster.get("schedulers") or []:
        schedulers.add_row(s["id"], str(len(s.get("shards") or [])), s.get("address") or "-")
    workers = table("worker", "running/capacity", "runtime", "state")
    for w in cluster.get("workers") or []:
        workers.add_row(
            w["id"],
            f"{w.get('running', 0)}/{w.get('capacity', 0)}",
            w.get("runtime") or "-",
            "stopping" if w.get("stopping") else "up",
        )
    return Group(head, Text(), schedulers, Text(), workers)


def dead_letters_table(letters: list[Reply], now: datetime) -> Table:
    t = table("id", "job", "execution", "attempts", "reason", "created")
    for d in letters:
        t.add_row(
            str(d["id"]),
            d["job_id"],
            str(d["execution_id"]),
            str(d.get("attempts", "")),
            d.get("reason", ""),
            when(d.get("created_at"), now),
        )
    return t
