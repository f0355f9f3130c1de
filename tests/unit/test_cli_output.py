"""How the CLI writes times, durations and YAML; where it finds the gateway
and keeps the token; that every command's help shows an example."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from cli import config
from cli.app import app
from cli.output import duration, load_yaml, relative, to_yaml
from cli.views import cluster_view

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("offset", "said"),
    [
        (0.4, "now"),
        (12.9, "in 12 s"),
        (-59, "59 s ago"),
        (60, "in 1 min"),
        (-3599, "59 min ago"),
        (3 * 3600 + 1200, "in 3 h"),
        (-(2 * 86400 + 5), "2 d ago"),
    ],
)
def test_relative_times(offset: float, said: str) -> None:
    assert relative(NOW + timedelta(seconds=offset), NOW) == said


@pytest.mark.parametrize(
    ("ms", "said"),
    [(None, "-"), (8.4, "8 ms"), (2400, "2.4 s"), (185_000, "3 min 5 s"), (3_720_000, "1 h 2 min")],
)
def test_durations(ms: float | None, said: str) -> None:
    assert duration(ms) == said


def test_yaml_keeps_on_a_key_and_multiline_commands_readable() -> None:
    (doc,) = load_yaml("jobs:\n- name: a\n  after: [{job: b, on: success}]\n  run_once: true\n  x: no\n")
    assert doc["jobs"][0] == {
        "name": "a",
        "after": [{"job": "b", "on": "success"}],
        "run_once": True,
        "x": "no",
    }
    text = to_yaml({"command": "echo a\necho b\n", "on": "x"})
    assert "command: |\n  echo a\n  echo b\n" in text and load_yaml(text) == [
        {"command": "echo a\necho b\n", "on": "x"}
    ]


def test_the_address_comes_from_the_flag_then_env_then_config_file(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    assert config.resolve_address(None, env) == config.Address("127.0.0.1:50051", "default")
    path = tmp_path / ".config/cronfleet/config.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("addr: from-file:1\n")
    assert config.resolve_address(None, env).addr == "from-file:1"
    env["CRONFLEET_GRPC_ADDR"] = "from-env:2"
    assert config.resolve_address(None, env).addr == "from-env:2"
    assert config.resolve_address("from-flag:3", env) == config.Address("from-flag:3", "--addr")
    path.write_text("adr: typo:1\n")
    with pytest.raises(config.ConfigError, match="adr: unknown setting"):
        config.resolve_address(None, {"HOME": str(tmp_path)})


def test_credentials_are_written_for_their_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "fresh/credentials.json"
    config.save_credentials(path, "tok", "host:1")
    config.save_credentials(path, "tok2", "host:1")  # and again, over the old file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert config.resolve_token({"CRONFLEET_CREDENTIALS": str(path)}) == "tok2"
    assert config.resolve_token({"CRONFLEET_CREDENTIALS": str(path), "CRONFLEET_TOKEN": "env"}) == "env"


def _commands(group: typer.Typer) -> list[list[str]]:
    click_group = typer.main.get_command(group)
    found: list[list[str]] = [[]]

    def walk(cmd: object, path: list[str]) -> None:
        for name, sub in getattr(cmd, "commands", {}).items():
            found.append([*path, name])
            walk(sub, [*path, name])

    walk(click_group, [])
    return found


@pytest.mark.parametrize("command", _commands(app), ids=lambda c: " ".join(c) or "cronfleet")
def test_every_help_shows_an_example(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], prog_name="cronfleet", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Example: cronfleet" in result.output


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_scripts_for_bash_and_zsh(shell: str) -> None:
    result = CliRunner().invoke(app, ["--show-completion", shell], prog_name="cronfleet")
    assert result.exit_code == 0 and "_CRONFLEET_COMPLETE" in result.output


def test_the_cluster_view_says_which_worker_is_stopping() -> None:
    cluster = {
        "leader": "coordinator-1",
        "epoch": 3,
        "coordinators": ["coordinator-1"],
        "schedulers": [{"id": "scheduler-1", "shards": [0, 1], "address": "127.0.0.1:1"}],
        "workers": [
            {"id": "worker-1", "capacity": 64, "running": 2, "runtime": "process", "stopping": True},
            {"id": "worker-2", "capacity": 64, "running": 0, "runtime": "process", "stopping": False},
        ],
    }
    console = Console(width=100, record=True)
    console.print(cluster_view(cluster))
    rows = {line.split()[0]: line.split() for line in console.export_text().splitlines() if "worker-" in line}
    assert rows["worker-1"][-1] == "stopping" and rows["worker-2"][-1] == "up"
