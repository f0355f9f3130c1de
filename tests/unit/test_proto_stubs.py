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


def test_generated_go_stubs_are_fresh(tmp_path: Path) -> None:
    """gen/go/cronfleet/v1 is what Debian's protoc-gen-go and protoc-gen-go-grpc
    make of the protos now (`make go-deps` installs them)."""
    protos = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "proto/cronfleet/v1").glob("*.proto"))
    subprocess.run(
        [
            "protoc",
            "-Iproto",
            "--go_opt=paths=source_relative",
            "--go-grpc_opt=paths=source_relative",
            f"--go_out={tmp_path}",
            f"--go-grpc_out={tmp_path}",
            *protos,
        ],
        cwd=ROOT,
        check=True,
    )
    fresh = {p.name: p.read_bytes() for p in (tmp_path / "cronfleet/v1").iterdir()}
    committed = {p.name: p.read_bytes() for p in (ROOT / "gen/go/cronfleet/v1").iterdir()}
    assert fresh, "protoc made no Go files"
    assert sorted(committed) == sorted(fresh), "gen/go/cronfleet/v1: stale or missing files (make proto)"
    for name, text in fresh.items():
        assert committed[name] == text, f"gen/go/cronfleet/v1/{name} is stale: run `make proto`"
