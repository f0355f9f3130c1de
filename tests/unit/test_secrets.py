"""Secret env values: sealed at rest (cronfleet.sealing), "***" in every
codec's reply, in the clear only for the worker, never in a repr."""

from __future__ import annotations

import stat
import uuid
from pathlib import Path

import pytest

from cronfleet import sealing
from cronfleet.codec import jsonapi, proto, rows
from cronfleet.config import Settings
from cronfleet.errors import InvalidArgument, InvalidSpec
from cronfleet.models import Job, JobSpec, Secret
from cronfleet.sealing import SealingError, SecretKey
from cronfleet.v1 import dispatch_pb2, jobs_pb2
from worker.runtime import RunSpec

VALUE = "hunter2-is-not-a-password"
JOB = uuid.UUID("00000000-0000-4000-8000-000000000001")
KEY = SecretKey.generate()


def secret_spec(**env: object) -> JobSpec:
    return jsonapi.spec_from_json({"name": "deploy", "command": "./deploy.sh", "env": env})


def sealed(spec: JobSpec, job_id: uuid.UUID = JOB) -> JobSpec:
    return sealing.seal_env(spec, KEY, job_id)


# ------------------------------------------------------------------ the key
def test_a_value_opens_only_for_its_job_and_name_under_its_key() -> None:
    token = KEY.seal(VALUE, "job/a/env/TOKEN")
    assert VALUE not in token and token.startswith(f"v1.{KEY.id}.")
    assert KEY.seal(VALUE, "job/a/env/TOKEN") != token, "a fresh nonce every time"
    assert KEY.open(token, "job/a/env/TOKEN") == VALUE
    with pytest.raises(SealingError, match="does not open"):
        KEY.open(token, "job/b/env/TOKEN")
    with pytest.raises(SealingError, match=f"sealed with key {KEY.id}; this process has key"):
        SecretKey.generate().open(token, "job/a/env/TOKEN")
    version, key_id, body = token.split(".")
    flipped = body[:-3] + ("A" if body[-3] != "A" else "B") + body[-2:]
    with pytest.raises(SealingError, match="does not open"):
        KEY.open(f"{version}.{key_id}.{flipped}", "job/a/env/TOKEN")


def test_a_key_comes_from_settings_or_its_file_and_is_never_printed(tmp_path: Path) -> None:
    assert SecretKey.from_settings(Settings()) is None
    assert SecretKey.from_settings(Settings(secret_key=KEY.encoded())) == KEY
    path = sealing.ensure_key_file(tmp_path / "secret.key")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = SecretKey.from_settings(Settings(secret_key_file=str(path)))
    assert key is not None and sealing.ensure_key_file(path) == path
    assert SecretKey.from_settings(Settings(secret_key_file=str(path))) == key, "kept, not remade"
    with pytest.raises(ValueError, match="CRONFLEET_SECRET_KEY: a secret key is 32 bytes"):
        SecretKey.from_settings(Settings(secret_key="c2hvcnQ="))
    with pytest.raises(ValueError, match="CRONFLEET_SECRET_KEY_FILE"):
        SecretKey.from_settings(Settings(secret_key_file=str(tmp_path / "missing")))
    assert KEY.encoded() not in repr(KEY) and KEY.encoded() not in repr(Settings(secret_key=KEY.encoded()))


# ------------------------------------------------------------- the codecs
def test_json_takes_a_secret_and_every_reply_shows_stars() -> None:
    spec = secret_spec(MODE="prod", TOKEN={"value": VALUE, "secret": True}, N={"value": 3})
    assert spec.env == {"MODE": "prod", "TOKEN": Secret(value=VALUE), "N": "3"}
    assert VALUE not in repr(spec), "a log line with the spec in it shows no secret"
    stars = {"value": "***", "secret": True}
    assert jsonapi.spec_to_json(spec)["env"] == {"MODE": "prod", "TOKEN": stars, "N": "3"}
    at = jsonapi.parse_time("2026-01-01T00:00:00Z", "t")
    job = Job(JOB, JOB, sealed(spec), "active", 0, 1, created_at=at, updated_at=at)
    assert jsonapi.job_to_json(job)["env"]["TOKEN"] == stars
    assert VALUE not in str(jsonapi.job_to_json(job)) and VALUE not in str(proto.job_to_proto(job))
    # "***" sent back means the value stored; a client writing a job may reveal its own.
    assert secret_spec(TOKEN=stars).env == {"TOKEN": Secret()}
    assert jsonapi.spec_to_json(spec, reveal_secrets=True)["env"]["TOKEN"] == {"value": VALUE, "secret": True}


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"T": {"value": "x", "secret": "yes"}}, "env.T.secret"),
        ({"T": {"value": True, "secret": True}}, "env.T.value"),
        ({"T": {"secret": True}}, "env.T.value"),
        ({"T": {"value": "x", "sealed": "v1.abc"}}, "env.T.sealed"),
        ({"T": ["x"]}, "env.T"),
    ],
)
def test_a_malformed_env_value_is_named(env: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        secret_spec(**env)
    assert err.value.field == field


def test_proto_shows_stars_unless_told_to_reveal_and_reads_both_back() -> None:
    spec = secret_spec(MODE="prod", TOKEN={"value": VALUE, "secret": True})
    shown = proto.spec_to_proto(spec)
    assert dict(shown.env) == {"MODE": "prod", "TOKEN": "***"} and list(shown.secret_env) == ["TOKEN"]
    assert proto.spec_from_proto(shown).env == {"MODE": "prod", "TOKEN": Secret()}
    sent = proto.spec_to_proto(spec, reveal_secrets=True)  # a client's request, a worker's run
    assert sent.env["TOKEN"] == VALUE and proto.spec_from_proto(sent).env["TOKEN"] == Secret(value=VALUE)
    assert proto.spec_to_proto(sealed(spec), reveal_secrets=True).env["TOKEN"] == "***", (
        "sealed: nothing to show"
    )
    changes = proto.changes_from_proto(sent, ["env"])
    assert changes == {"env": {"MODE": "prod", "TOKEN": Secret(value=VALUE)}}
    with pytest.raises(InvalidArgument) as err:
        proto.spec_from_proto(jobs_pb2.JobSpec(name="x", command="y", secret_env=["NOPE"]))
    assert err.value.field == "secret_env.NOPE"


def test_a_row_stores_only_sealed_values_and_reads_them_back_sealed() -> None:
    spec = secret_spec(MODE="prod", TOKEN={"value": VALUE, "secret": True})
    with pytest.raises(ValueError, match="must be sealed"):
        rows.job_params(spec)
    params = rows.job_params(sealed(spec))
    stored = params["spec"].obj["env"]
    assert stored["MODE"] == "prod" and stored["TOKEN"]["secret"] is True
    assert VALUE not in str(params)
    row = {**params, "spec": params["spec"].obj}
    back = rows.spec_from_row(row)
    assert back.env["TOKEN"] == Secret(sealed=stored["TOKEN"]["sealed"])
    assert sealing.open_env(back, KEY, JOB).env["TOKEN"] == Secret(value=VALUE)


# --------------------------------------------------------- seal and open
def test_sealing_keeps_a_stored_value_for_stars_and_refuses_what_it_cannot_do() -> None:
    stored = sealed(secret_spec(TOKEN={"value": VALUE, "secret": True}))
    update = secret_spec(TOKEN={"value": "***", "secret": True}, MODE="x")
    kept = sealing.seal_env(update, KEY, JOB, stored=stored)
    assert kept.env["TOKEN"] == stored.env["TOKEN"] and kept.env["MODE"] == "x"
    with pytest.raises(InvalidSpec, match="has none: send the value") as err:
        sealing.seal_env(update, KEY, JOB)  # a create: nothing stored
    assert err.value.field == "env.TOKEN"
    with pytest.raises(InvalidSpec, match="no secret key") as err:
        sealing.seal_env(secret_spec(TOKEN={"value": VALUE, "secret": True}), None, JOB)
    assert err.value.field == "env.TOKEN" and VALUE not in str(err.value)
    plain = secret_spec(MODE="x")
    assert sealing.seal_env(plain, None, JOB) is plain, "no secret, no key needed"


def test_opening_names_the_variable_and_never_the_value() -> None:
    spec = sealed(secret_spec(TOKEN={"value": VALUE, "secret": True}))
    with pytest.raises(SealingError, match="env TOKEN: this scheduler has no secret key"):
        sealing.open_env(spec, None, JOB)
    with pytest.raises(SealingError, match="env TOKEN: sealed with key"):
        sealing.open_env(spec, SecretKey.generate(), JOB)
    with pytest.raises(SealingError, match="env TOKEN: does not open") as err:
        sealing.open_env(spec, KEY, uuid.uuid4())  # copied into another job's row
    assert VALUE not in str(err.value)


def test_an_idempotency_fingerprint_tells_secrets_apart_without_holding_them() -> None:
    a = sealing.fingerprint_env(secret_spec(TOKEN={"value": VALUE, "secret": True}), KEY)
    b = sealing.fingerprint_env(secret_spec(TOKEN={"value": VALUE + "!", "secret": True}), KEY)
    assert a != b and VALUE not in str(a)
    assert a == sealing.fingerprint_env(secret_spec(TOKEN={"value": VALUE, "secret": True}), KEY)
    with pytest.raises(InvalidSpec):
        sealing.fingerprint_env(secret_spec(TOKEN={"value": VALUE, "secret": True}), None)


# --------------------------------------------------------------- the worker
def test_the_worker_runs_with_the_value_and_never_prints_it(tmp_path: Path) -> None:
    spec = sealing.open_env(sealed(secret_spec(TOKEN={"value": VALUE, "secret": True}, MODE="x")), KEY, JOB)
    assignment = dispatch_pb2.Assignment(
        execution_id=9, job_id=str(JOB), attempt=1, job=proto.spec_to_proto(spec, reveal_secrets=True)
    )
    run = RunSpec.from_assignment(assignment, tmp_path)
    assert run.env == {"TOKEN": VALUE, "MODE": "x"} and not run.refused
    assert VALUE not in repr(run)


def test_a_run_whose_secret_did_not_open_is_refused(tmp_path: Path) -> None:
    spec = sealed(secret_spec(TOKEN={"value": VALUE, "secret": True}))
    refused = dispatch_pb2.Assignment(
        execution_id=9,
        job_id=str(JOB),
        attempt=1,
        job=proto.spec_to_proto(spec),
        refused="secret_unavailable: x",
    )
    run = RunSpec.from_assignment(refused, tmp_path)
    assert run.refused == "secret_unavailable: x" and run.env == {}
    # A secret that arrives without its value is refused here too, never run as "***".
    masked = dispatch_pb2.Assignment()
    masked.CopyFrom(refused)
    masked.refused = ""
    run = RunSpec.from_assignment(masked, tmp_path)
    assert run.refused.startswith("secret_unavailable: env TOKEN") and run.env == {}
