"""The committed stubs in cronfleet/v1/ are what `make proto` generates now."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_stubs_are_fresh(tmp_path: Path) -> None:
    protos = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "proto/cronfleet/v1").glob("*.proto"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-Iproto",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            *protos,
        ],
        cwd=ROOT,
        check=True,
    )
    generated = sorted((tmp_path / "cronfleet/v1").iterdir())
    assert generated
    for fresh in generated:
        committed = ROOT / "cronfleet/v1" / fresh.name
        assert committed.exists() and committed.read_bytes() == fresh.read_bytes(), (
            f"cronfleet/v1/{fresh.name} is stale: run `make proto`"
        )
