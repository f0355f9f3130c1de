"""Notify targets are checked where they are given, naming the field; alert
bodies are the same bytes each time and their signature verifies."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from cronfleet import alerts
from cronfleet.codec import jsonapi
from cronfleet.errors import CronfleetError
from cronfleet.models import is_slack_webhook
from tests.helpers import job_spec

PAYLOAD = {
    "kind": "failed",
    "job_id": "0b7c",
    "job_name": "nightly",
    "execution_id": "42",
    "attempt": 2,
    "status": "failed",
    "exit_code": 3,
    "scheduled_at": "2026-12-02T00:00:00.000000Z",
}


@pytest.mark.parametrize(
    ("notify", "field", "words"),
    [
        ([{"webhook": "ftp://example.com/x"}], "notify[0].webhook", "http:// or https://"),
        ([{"webhook": "not a url"}], "notify[0].webhook", "http:// or https://"),
        ([{"webhook": "https://e.com/x", "on": ["failed", "exploded"]}], "notify[0].on[1]", "must be one of"),
        ([{"webhook": "https://e.com/x", "on": []}], "notify[0].on", "at least one"),
        ([{"webhook": "https://e.com/x", "format": "xml"}], "notify[0].format", "json, slack"),
        ([{"webhook": "https://e.com/alerts", "format": "slack"}], "notify[0].webhook", "incoming-webhook"),
        ([{"on": ["failed"]}], "notify[0].webhook", "is required"),
        ([{"webhook": "https://e.com/x", "colour": "red"}], "notify[0].colour", "unknown field"),
        ("https://e.com/x", "notify", "must be a list"),
        ([{"webhook": f"https://e.com/{i}"} for i in range(11)], "notify", "at most 10"),
    ],
)
def test_a_bad_notify_names_its_field(notify: Any, field: str, words: str) -> None:
    with pytest.raises(CronfleetError) as caught:
        job_spec(notify=notify).validate()
    assert caught.value.field == field and words in str(caught.value)


def test_a_good_notify_keeps_what_was_given_and_defaults_the_rest() -> None:
    spec = job_spec(notify=[{"webhook": "https://hooks.slack.com/services/T0/B0/xyz", "format": "slack"}])
    spec.validate()
    (target,) = spec.notify
    assert target.on == ("failed", "dead", "timed_out", "recovered") and target.format == "slack"
    assert jsonapi.spec_to_json(spec)["notify"] == [
        {"webhook": "https://hooks.slack.com/services/T0/B0/xyz", "on": list(target.on), "format": "slack"}
    ]


@pytest.mark.parametrize(
    ("path", "slack"),
    [
        ("/services/T0/B0/xyz", True),  # Slack
        ("/hooks/3xuqk1b8", True),  # Mattermost
        ("/hooks/abc/def", True),  # Rocket.Chat
        ("/api/webhooks/1/tok/slack", True),  # Discord's Slack-compatible endpoint
        ("/alerts", False),
        ("/hooks", False),
        ("/", False),
    ],
)
def test_slack_webhook_shapes(path: str, slack: bool) -> None:
    assert is_slack_webhook(path) is slack


def test_a_json_body_is_stable_and_its_signature_verifies() -> None:
    created = datetime(2026, 12, 2, 1, 2, 3, tzinfo=UTC)
    body = alerts.body(7, created, PAYLOAD, "json", "https://cron.example.com/")
    assert body == alerts.body(
        7, created, dict(reversed(PAYLOAD.items())), "json", "https://cron.example.com/"
    )
    event = json.loads(body)
    assert event["id"] == "7" and event["created_at"] == "2026-12-02T01:02:03Z"
    assert event["url"] == "https://cron.example.com/api/v1/executions/42"
    secret = alerts.new_secret()
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert alerts.sign(secret, body) == f"sha256={expected}"
    assert alerts.sign(secret, body + b" ") != alerts.sign(secret, body)


def test_a_slack_body_is_one_line_of_text() -> None:
    body = json.loads(alerts.body(7, datetime.now(UTC), PAYLOAD, "slack", "https://c.example.com"))
    assert body == {
        "text": "Job nightly failed (attempt 2; exit code 3; due 2026-12-02T00:00:00.000000Z)"
        " <https://c.example.com/api/v1/executions/42|run 42>"
    }
