"""One codec each way: a job survives JSON, proto and rows unchanged."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, tzinfo
from pathlib import Path

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from cronfleet.codec import jsonapi, proto, rows
from cronfleet.errors import InvalidArgument
from cronfleet.models import Job, JobSpec, Resources, Step
from cronfleet.records import Execution, StepResult
from cronfleet.v1 import dispatch_pb2, jobs_pb2
from worker.runtime import RunSpec, step_results

FULL = {
    "name": "build",
    "steps": [{"name": "test", "run": "go test ./..."}, {"name": "vet", "run": "go vet ./..."}],
    "schedule": "0 0 3 * * *",
    "timezone": "Europe/Paris",
    "start_at": "2026-12-01T00:00:00Z",
    "end_at": "2027-12-01T00:00:00Z",
    "image": "golang:1.23",
    "env": {"GOFLAGS": "-mod=vendor"},
    "max_retries": 2,
    "timeout_seconds": 600,
    "priority": 7,
    "concurrency_policy": "allow",
    "max_concurrency": 2,
    "resources": {"cpus": 1.5, "memory_mb": 512},
    "run_once": True,
    "retry": {
        "backoff_seconds": 1.0,
        "multiplier": 2.0,
        "max_backoff_seconds": 60.0,
        "jitter": 0.2,
        "on": ["failed", "lost"],
        "never_exit_codes": [2],
    },
    "container": "per_job",
    "misfire_policy": "run_all",
    "delivery": "at_most_once",
    "after": [{"job_id": "7d3c1d8e-1111-4111-8111-111111111111", "on": "failure"}],
}
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_json_round_trip_keeps_every_field() -> None:
    spec = jsonapi.spec_from_json(FULL)
    assert spec.steps == (Step(name="test", run="go test ./..."), Step(name="vet", run="go vet ./..."))
    assert spec.resources == Resources(cpus=1.5, memory_mb=512)
    assert jsonapi.spec_to_json(spec) == FULL


def test_proto_round_trip_keeps_every_field() -> None:
    spec = jsonapi.spec_from_json(FULL)
    assert proto.spec_from_proto(proto.spec_to_proto(spec)) == spec
    assert proto.spec_from_proto(jobs_pb2.JobSpec(name="x", command="true")) == JobSpec(
        name="x", command="true"
    )


def test_row_round_trip_splits_columns_from_the_spec_document() -> None:
    spec = jsonapi.spec_from_json(FULL)
    params = rows.job_params(spec)
    assert params["schedule"] == "0 0 3 * * *" and params["priority"] == 7
    assert {"steps", "image", "env", "resources", "retry", "after"} <= set(params["spec"].obj)
    assert not set(params["spec"].obj) & set(rows.JOB_COLUMNS)
    assert rows.spec_from_row(params | {"spec": params["spec"].obj}) == spec


def test_unset_fields_are_left_out_of_replies() -> None:
    job = Job(
        id=uuid.uuid4(),
        owner_id=uuid.uuid4(),
        spec=JobSpec(name="hello", command="echo hello"),
        status="active",
        shard_id=3,
        version=1,
        created_at=NOW,
        updated_at=NOW,
    )
    body = jsonapi.job_to_json(job)
    assert body["created_at"] == "2026-11-23T12:00:00Z" and body["env"] == {}
    assert not {"steps", "resources", "schedule", "next_run_at", "shard_id"} & set(body)
    message = proto.job_to_proto(job)
    assert message.spec.command == "echo hello" and not message.HasField("next_run_at")


def test_an_execution_shows_its_steps_and_hides_its_owner() -> None:
    execution = Execution(
        id=42,
        job_id=uuid.uuid4(),
        owner_id=uuid.uuid4(),
        shard_id=1,
        attempt=1,
        status="failed",
        trigger="schedule",
        scheduled_at=NOW,
        run_at=NOW,
        exit_code=0,
        steps=(
            StepResult(name="a", exit_code=0, duration_ms=10.0),
            StepResult(name="b", exit_code=3, duration_ms=0),
        ),
    )
    body = jsonapi.execution_to_json(execution)
    assert (
        body["id"] == "42" and body["exit_code"] == 0 and "owner_id" not in body and "cold_start" not in body
    )
    assert body["steps"][1] == {"name": "b", "exit_code": 3, "duration_ms": 0}
    message = proto.execution_to_proto(execution)
    assert message.exit_code == 0 and [s.name for s in message.steps] == ["a", "b"]
    assert proto.step_results_from_proto(message.steps) == execution.steps


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "x", "steps": [{"name": "a"}]}, "steps[0].run"),
        ({"name": "x", "steps": "echo"}, "steps"),
        ({"name": "x", "resources": {"memory_mb": "big"}}, "resources.memory_mb"),
        ({"name": "x", "env": {"A": True}}, "env.A"),
        ({"name": "x", "priority": True}, "priority"),
    ],
)
def test_json_errors_name_the_nested_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        jsonapi.spec_from_json(data)
    assert err.value.field == field


def test_unnamed_steps_are_numbered_the_same_way_in_json_and_proto() -> None:
    from_json = jsonapi.spec_from_json({"name": "x", "steps": [{"run": "a"}, {"run": "b"}]})
    from_proto = proto.spec_from_proto(
        jobs_pb2.JobSpec(name="x", steps=[jobs_pb2.Step(run="a"), jobs_pb2.Step(run="b")])
    )
    assert [s.name for s in from_json.steps] == [s.name for s in from_proto.steps] == ["step-1", "step-2"]


def test_update_masks_name_known_fields_and_unset_means_default() -> None:
    changes = proto.changes_from_proto(jobs_pb2.JobSpec(priority=9), ["priority", "schedule"])
    assert changes == {"priority": 9, "schedule": None}
    assert JobSpec(name="x", command="y", schedule="@daily").with_changes(changes).schedule is None
    with pytest.raises(InvalidArgument) as err:
        proto.changes_from_proto(jobs_pb2.JobSpec(), ["colour"])
    assert err.value.field == "update_mask.colour"


def test_the_worker_builds_its_run_from_the_assignment_alone(tmp_path: Path) -> None:
    spec = jsonapi.spec_from_json(FULL)
    assignment = dispatch_pb2.Assignment(
        execution_id=9, job_id="j", owner_id="o", attempt=2, job=proto.spec_to_proto(spec)
    )
    run = RunSpec.from_assignment(assignment, tmp_path)
    assert (run.steps, run.env, run.image, run.resources) == (
        spec.steps,
        spec.env,
        spec.image,
        spec.resources,
    )
    assert run.timeout_seconds == 600 and run.spool_path == tmp_path / "9-2" / "output.log"


def test_step_results_come_from_the_report_not_the_log() -> None:
    steps = (Step(name="a", run="true"), Step(name="b b", run="false"))
    report = "0 0 3\n1 1 120\nnoise\n7 0 1\n"
    assert step_results(report, steps) == (
        StepResult(name="a", exit_code=0, duration_ms=30.0),
        StepResult(name="b b", exit_code=1, duration_ms=1200.0),
    )


# (hypothesis types `timezones` narrower than what it takes: the ignore below)
ANY_ZONE: st.SearchStrategy[tzinfo | None] = (
    st.none() | st.timezones()
)  # naive (taken as UTC) or aware in any zone


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=ANY_ZONE))  # type: ignore[arg-type]
def test_timestamps_match_protobufs_own_conversion(dt: datetime) -> None:
    theirs = Timestamp()
    theirs.FromDatetime(dt)
    ours = proto.timestamp(dt)
    assert (ours.seconds, ours.nanos) == (theirs.seconds, theirs.nanos)
    assert proto.to_datetime(ours) == theirs.ToDatetime(tzinfo=UTC)
    assert proto.to_datetime(ours).tzinfo is not None


@given(st.integers(min_value=-62_135_596_800, max_value=253_402_300_799), st.integers(0, 999_999_999))
def test_datetimes_from_timestamps_match_protobufs_own(seconds: int, nanos: int) -> None:
    ts = Timestamp(seconds=seconds, nanos=nanos)
    assert proto.to_datetime(ts) == ts.ToDatetime(tzinfo=UTC)
