"""``cronfleet apply | diff | export``: jobs kept as YAML files.

``apply -f`` prints the plan (``+ create``, ``~ update`` with the fields,
``= unchanged``, ``- delete`` with ``--prune``), then makes it so; ``diff``
prints it only; ``export`` writes the user's jobs in the same form, so that
applying an export changes nothing. The plan itself is ``cli.plan``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.text import Text

from cli.output import Format, OutputOption, console, emit, load_yaml, to_yaml
from cli.plan import FileJob, Plan, Reply, current_spec, jobs_in_document, make_plan, placeholder_id
from cli.session import BadInput, Failure, session
from cronfleet.client import Client

FilesOption = Annotated[
    list[Path],
    typer.Option("--file", "-f", help="a YAML file, or a folder of *.yaml / *.yml (repeatable)"),
]
PruneOption = Annotated[bool, typer.Option("--prune", help="also delete your jobs that no file names")]
SecretsOption = Annotated[
    bool,
    typer.Option(
        "--update-secrets",
        help="send the files' values for env the server shows as *** (else kept as they are)",
    ),
]
SHOWN_VALUE = 60  # characters of a changed value the plan shows


def read_files(paths: list[Path]) -> list[FileJob]:
    """Every job in the files (a folder: its *.yaml and *.yml, by name)."""
    found: list[FileJob] = []
    for path in paths:
        if path.is_dir():
            files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
            if not files:
                raise BadInput(f"{path}: no *.yaml or *.yml files in this folder")
        elif path.exists():
            files = [path]
        else:
            raise BadInput(f"{path}: no such file or folder")
        for file in files:
            try:
                documents = load_yaml(file.read_text())
            except yaml.YAMLError as exc:
                raise BadInput(f"{file}: {' '.join(str(exc).split())}") from None
            for i, doc in enumerate(documents):
                found += jobs_in_document(doc, str(file) if len(documents) == 1 else f"{file}#{i + 1}")
    return found


def _short(value: Any) -> str:
    text = json.dumps(value) if value is not None else "(default)"
    return text if len(text) <= SHOWN_VALUE else text[: SHOWN_VALUE - 3] + "..."


def print_plan(out: Console, plan: Plan) -> None:
    marks = {
        "create": ("+", "green"),
        "update": ("~", "yellow"),
        "unchanged": ("=", "dim"),
        "delete": ("-", "red"),
    }
    for change in plan.changes:
        mark, style = marks[change.action]
        fields = f": {', '.join(f.field for f in change.fields)}" if change.fields else ""
        out.print(Text(f"{mark} {change.action} {change.name}{fields}", style=style))
        for f in change.fields:
            out.print(Text(f"    {f.field}: {_short(f.before)} -> {_short(f.after)}", style="dim"))
    out.print(Text(f"Plan: {plan.summary()}.", style="bold"))


def compute(c: Client, paths: list[Path], prune: bool, update_secrets: bool) -> Plan:
    files = read_files(paths)
    return make_plan(files, c.all_jobs(), prune=prune, update_secrets=update_secrets)


def carry_out(c: Client, plan: Plan, out: Console) -> None:
    """Write the plan: creates and updates in order (upstreams first, their
    new ids put in place of the placeholders), then deletes."""
    created: dict[str, str] = {}  # placeholder -> the new job's id

    def real_ids(spec: Reply) -> Reply:
        after = [u | {"job_id": created.get(u["job_id"], u["job_id"])} for u in spec.get("after", [])]
        return spec | {"after": after} if after else spec

    for change in plan.changes:
        assert change.spec is not None or change.action == "delete"
        if change.action == "create" and change.spec is not None:
            job = c.create_job(**real_ids(change.spec))
            created[placeholder_id(change.name)] = job["id"]
            out.print(f"created {change.name} ({job['id']})")
        elif change.action == "update" and change.spec is not None and change.job_id:
            spec = real_ids(change.spec)
            c.update_job(change.job_id, **{f.field: spec.get(f.field) for f in change.fields})
            out.print(f"updated {change.name}")
        elif change.action == "delete" and change.job_id:
            c.delete_job(change.job_id)
            out.print(f"deleted {change.name} ({change.job_id})")


def apply(
    ctx: typer.Context,
    file: FilesOption,
    prune: PruneOption = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="delete without asking (with --prune)")] = False,
    update_secrets: SecretsOption = False,
) -> None:
    """Make your jobs what the files say: create the new, update the changed, leave the rest.

    Example: cronfleet apply -f jobs/ --prune
    """
    c = session(ctx).client
    plan = compute(c, file, prune, update_secrets)
    out = console()
    print_plan(out, plan)
    if not plan.writes:
        out.print("Nothing to change.")
        return
    deletes = plan.of("delete")
    if deletes and not yes:
        names = ", ".join(d.name for d in deletes)
        if not sys.stdin.isatty():
            raise BadInput(f"prune: would delete {len(deletes)} jobs ({names}); pass --yes to confirm")
        if not typer.confirm(f"Delete {len(deletes)} jobs ({names})?", default=False):
            raise Failure("nothing changed (not confirmed)")
    carry_out(c, plan, out)
    out.print(Text(f"Applied: {plan.summary(done=True)}.", style="bold"))


def diff(
    ctx: typer.Context,
    file: FilesOption,
    prune: PruneOption = False,
    update_secrets: SecretsOption = False,
    output: OutputOption = Format.table,
) -> None:
    """What apply would do, without doing it.

    Example: cronfleet diff -f jobs.yaml --prune
    """
    plan = compute(session(ctx).client, file, prune, update_secrets)
    emit([ch.as_json() for ch in plan.changes], output, lambda out: print_plan(out, plan))


def export_document(jobs: list[Reply]) -> Reply:
    """The jobs as a file ``jobs: [...]``, by name; an upstream among them is
    named (``after: [{job: NAME, on}]``), so the file stands on its own."""
    name_of = {job["id"]: job["name"] for job in jobs}
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job["name"]] = counts.get(job["name"], 0) + 1
    out = []
    for job in sorted(jobs, key=lambda j: (j["name"], j["id"])):
        spec = current_spec(job)
        after = []
        for upstream in spec.get("after", []):
            name = name_of.get(upstream["job_id"])
            if name is not None and counts[name] == 1:
                upstream = {"job": name, **{k: v for k, v in upstream.items() if k != "job_id"}}
            after.append(upstream)
        out.append(spec | {"after": after} if after else spec)
    return {"jobs": out}


def export(
    ctx: typer.Context,
    output: Annotated[Format, typer.Option("--output", "-o", help="yaml (default) or json")] = Format.yaml,
    to: Annotated[
        Path | None, typer.Option("--file", "-f", help="write to this file instead of stdout")
    ] = None,
) -> None:
    """Write your jobs as a file that apply takes (export, then apply: no change).

    Example: cronfleet export -f jobs.yaml   # or: cronfleet export > jobs.yaml
    """
    jobs = session(ctx).client.all_jobs()
    names = [j["name"] for j in jobs]
    for name in sorted({n for n in names if names.count(n) > 1}):
        console(stderr=True).print(
            f"[yellow]warning:[/] {names.count(name)} jobs are named {name!r}; apply matches one"
        )
    document = export_document(jobs)
    text = json.dumps(document, indent=2) + "\n" if output is Format.json else to_yaml(document)
    if to is None:
        sys.stdout.write(text)
    else:
        to.write_text(text)
        console(stderr=True).print(f"wrote {len(jobs)} jobs to {to}")
