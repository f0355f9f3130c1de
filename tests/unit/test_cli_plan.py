"""The plan of `cronfleet apply`: files against the server's jobs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from cli.files import export_document
from cli.plan import FileJob, jobs_in_document, make_plan, placeholder_id
from cli.session import BadInput
from cronfleet.codec.jsonapi import job_to_json, spec_from_json
from cronfleet.models import Job

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def server_job(**fields: Any) -> dict[str, Any]:
    """A job as the API sends it (every default written out)."""
    job = Job(
        id=uuid.uuid4(),
        owner_id=uuid.uuid4(),
        spec=spec_from_json(fields),
        status="active",
        shard_id=0,
        version=1,
        created_at=NOW,
        updated_at=NOW,
    )
    return job_to_json(job)


def files(*jobs: dict[str, Any]) -> list[FileJob]:
    return jobs_in_document({"jobs": list(jobs)}, "jobs.yaml")


def actions(plan: Any) -> dict[str, str]:
    return {c.name: c.action for c in plan.changes}


def test_new_jobs_are_created_and_the_same_ones_unchanged_despite_defaults() -> None:
    current = [server_job(name="a", command="true", schedule="@daily")]
    plan = make_plan(
        files(
            {"name": "a", "command": "true", "schedule": "@daily", "timezone": "UTC", "priority": 5},
            {"name": "b", "command": "echo b"},
        ),
        current,
    )
    assert actions(plan) == {"a": "unchanged", "b": "create"}
    created = plan.of("create")[0].spec
    assert created is not None and (created["name"], created["command"], created["priority"]) == (
        "b",
        "echo b",
        5,
    )
    assert plan.summary() == "1 to create, 0 to update, 1 unchanged"


def test_a_change_names_just_the_fields_that_differ() -> None:
    current = [server_job(name="a", command="true", schedule="@daily", max_retries=2)]
    plan = make_plan(files({"name": "a", "command": "false", "schedule": "@daily"}), current)
    (change,) = plan.changes
    assert change.action == "update" and change.job_id == current[0]["id"]
    assert [(f.field, f.before, f.after) for f in change.fields] == [
        ("command", "true", "false"),
        ("max_retries", 2, 0),  # left out of the file: back to the default
    ]


def test_prune_deletes_what_no_file_names_and_only_with_prune() -> None:
    current = [server_job(name="keep", command="true"), server_job(name="gone", command="true")]
    wanted = files({"name": "keep", "command": "true"})
    assert actions(make_plan(wanted, current)) == {"keep": "unchanged"}
    plan = make_plan(wanted, current, prune=True)
    assert actions(plan) == {"keep": "unchanged", "gone": "delete"}
    assert plan.of("delete")[0].job_id == current[1]["id"] and plan.writes


def test_upstreams_by_name_come_first_and_resolve_to_ids() -> None:
    existing = server_job(name="extract", command="true")
    plan = make_plan(
        files(
            {"name": "report", "command": "true", "after": [{"job": "load", "on": "success"}]},
            {"name": "load", "command": "true", "after": [{"job": "extract"}]},
        ),
        [existing],
    )
    assert [c.name for c in plan.changes] == ["load", "report"]
    load, report = plan.changes
    assert load.spec is not None and load.spec["after"] == [{"job_id": existing["id"], "on": "success"}]
    assert report.spec is not None and report.spec["after"] == [
        {"job_id": placeholder_id("load"), "on": "success"}
    ]


def test_an_upstream_named_or_given_by_id_is_the_same_upstream() -> None:
    up = server_job(name="up", command="true")
    down = server_job(name="down", command="true", after=[{"job_id": up["id"]}])
    plan = make_plan(files({"name": "down", "command": "true", "after": [{"job": "up"}]}), [up, down])
    assert actions(plan) == {"down": "unchanged"}


STARS = {"value": "***", "secret": True}


def secret(value: str) -> dict[str, Any]:
    return {"value": value, "secret": True}


def test_a_secret_shown_as_stars_is_kept_unless_asked() -> None:
    current = [server_job(name="a", command="true", env={"TOKEN": secret("s3cret"), "MODE": "x"})]
    assert current[0]["env"] == {"TOKEN": STARS, "MODE": "x"}
    for token in (secret("s3cret"), "s3cret", STARS):  # as written, as a plain value, as exported
        same = files({"name": "a", "command": "true", "env": {"TOKEN": token, "MODE": "x"}})
        assert actions(make_plan(same, current)) == {"a": "unchanged"}
    same = files({"name": "a", "command": "true", "env": {"TOKEN": "s3cret", "MODE": "x"}})
    (update,) = make_plan(same, current, update_secrets=True).changes
    assert update.action == "update" and update.spec is not None
    assert update.spec["env"]["TOKEN"] == secret("s3cret"), "a secret stays secret"
    assert update.fields[0].after == {"TOKEN": STARS, "MODE": "x"}, "a secret is never printed"
    for token in (secret("s3cret"), STARS):
        changed = make_plan(
            files({"name": "a", "command": "true", "env": {"TOKEN": token, "MODE": "y"}}), current
        )
        (change,) = changed.changes
        assert change.fields[0].after == {"TOKEN": STARS, "MODE": "y"}, "a secret is never printed"
        assert change.spec is not None and change.spec["env"]["TOKEN"] == STARS, "*** keeps the value stored"


def test_a_new_secret_is_sent_and_never_printed() -> None:
    current = [server_job(name="a", command="true")]
    (change,) = make_plan(
        files({"name": "a", "command": "true", "env": {"TOKEN": secret("s3cret")}}), current
    ).changes
    assert change.spec is not None and change.spec["env"] == {"TOKEN": secret("s3cret")}
    assert change.fields[0].after == {"TOKEN": STARS}
    (create,) = make_plan(files({"name": "b", "command": "true", "env": {"TOKEN": secret("x")}}), []).changes
    assert create.spec is not None and create.spec["env"] == {"TOKEN": secret("x")}


@pytest.mark.parametrize(
    ("jobs", "wrong"),
    [
        ([{"name": "a", "command": "true", "schedule": "99 * * * * *"}], "jobs[0] (a): schedule: "),
        ([{"name": "a", "command": "true", "priority": "high"}], "priority: must be an integer"),
        ([{"command": "true"}], "jobs[0]: name: is required"),
        (
            [{"name": "a", "command": "x"}, {"name": "a", "command": "y"}],
            "name: 'a' is also jobs.yaml jobs[0]",
        ),
        ([{"name": "a", "command": "x", "after": [{"job": "nope"}]}], "after[0].job: no job named 'nope'"),
        (
            [
                {"name": "a", "command": "x", "after": [{"job": "b"}]},
                {"name": "b", "command": "x", "after": [{"job": "a"}]},
            ],
            "after: a cycle: a -> b -> a",
        ),
    ],
)
def test_what_is_wrong_in_a_file_is_named(jobs: list[dict[str, Any]], wrong: str) -> None:
    with pytest.raises(BadInput) as err:
        make_plan(files(*jobs), [])
    assert wrong in str(err.value)


def test_a_name_shared_by_two_jobs_is_refused_with_their_ids() -> None:
    twins = [server_job(name="a", command="true"), server_job(name="a", command="true")]
    with pytest.raises(BadInput) as err:
        make_plan(files({"name": "a", "command": "true"}), twins)
    assert twins[0]["id"] in str(err.value) and twins[1]["id"] in str(err.value)


def test_a_document_is_jobs_and_nothing_else() -> None:
    assert jobs_in_document(None, "empty.yaml") == []
    with pytest.raises(BadInput, match="job: unknown key"):
        jobs_in_document({"job": []}, "x.yaml")
    with pytest.raises(BadInput, match="jobs: must be a list"):
        jobs_in_document({"jobs": {"name": "a"}}, "x.yaml")


def test_an_export_applied_changes_nothing() -> None:
    up = server_job(name="up", command="true", schedule="*/5 * * * * *", env={"A": "1"})
    down = server_job(name="down", steps=[{"name": "s", "run": "true"}], after=[{"job_id": up["id"]}])
    document = export_document([down, up])
    assert [j["name"] for j in document["jobs"]] == ["down", "up"]
    assert document["jobs"][0]["after"] == [{"job": "up", "on": "success"}]
    plan = make_plan(jobs_in_document(document, "export.yaml"), [up, down], prune=True)
    assert actions(plan) == {"up": "unchanged", "down": "unchanged"} and not plan.writes
