from __future__ import annotations

from pathlib import Path

import pytest

from cronfleet.config import Settings


def test_env_overrides_file_and_defaults(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[scheduler]\nclaim_batch = 100\n[worker]\ncapacity = 8\nruntime = "noop"\n')
    s = Settings.from_env({"CRONFLEET_CONFIG": str(cfg), "CRONFLEET_CAPACITY": "16"})
    assert (s.claim_batch, s.capacity, s.runtime) == (100, 16, "noop")


def test_bad_number_names_the_setting() -> None:
    with pytest.raises(ValueError, match="capacity"):
        Settings.from_env({"CRONFLEET_CAPACITY": "lots"})


def test_the_deploy_example_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "deploy" / "cronfleet.example.toml"
    s = Settings.from_env({"CRONFLEET_CONFIG": str(example)})
    assert (s.log_store, s.capacity, s.lookahead_docker, s.pool_floor) == ("s3", 64, 3.0, 4)
