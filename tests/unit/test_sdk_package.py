"""`pip install cronfleet` is the SDK: the client and the command's client
commands import nothing beyond the package's own dependencies (the server's
libraries are the [server] extra), and the wheel says so and is typed.

The import checks run in a subprocess whose import system refuses every
top-level module that is neither the standard library, the repository's
`cronfleet` and `cli`, nor a distribution the base dependencies pull in
(transitively), as if only `pip install cronfleet` had run."""

from __future__ import annotations

import functools
import json
import pkgutil
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
ROLES = ("launch", "coordinator", "scheduler", "worker", "gateway")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SERVER_ONLY = (
    *("psycopg", "aetcd", "fastapi", "uvicorn", "aioboto3"),
    *("argon2-cffi", "structlog", "cryptography", "grpcio-health-checking"),
)

# Installed first in the subprocess: a finder that refuses what the SDK's
# install would not have.
BLOCKER = """
import importlib.abc, json, sys
ALLOWED = set(json.loads(sys.argv[1]))
class OnlyTheSdksDependencies(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        top = name.split(".")[0]
        if top in ALLOWED or top in sys.stdlib_module_names or top.startswith("_sysconfigdata"):
            return None
        raise ModuleNotFoundError(f"No module named {top!r} (not an SDK dependency)", name=top)
sys.meta_path.insert(0, OnlyTheSdksDependencies())
"""


def base_requirements() -> list[Requirement]:
    return [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]


def closure(requirements: list[Requirement]) -> set[str]:
    """The installed distributions ``requirements`` pull in, transitively
    (extras of dependencies and environment markers read as pip would)."""
    seen: set[str] = set()
    todo = [(r, frozenset(r.extras)) for r in requirements]
    while todo:
        req, extras = todo.pop()
        name = canonicalize_name(req.name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # not for this platform or Python (its marker said so below)
        key = f"{name}{sorted(extras)}"
        if key in seen:
            continue
        seen.add(key)
        for line in dist.requires or ():
            sub = Requirement(line)
            wanted = sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in {"", *extras})
            if wanted:
                todo.append((sub, frozenset(sub.extras)))
    return {k.split("[")[0] for k in seen}


def server_requirements() -> list[Requirement]:
    return [Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"]["server"]]


@functools.cache
def allowed_modules(server: bool) -> list[str]:
    dists = closure(base_requirements() + (server_requirements() if server else []))
    tops = {
        module
        for module, owners in metadata.packages_distributions().items()
        if any(canonicalize_name(d) in dists for d in owners)
    }
    return sorted(tops | {"cronfleet", "cli"} | (set(ROLES) if server else set()))


def run_as_sdk_install(code: str, server: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ``code`` as if only `pip install cronfleet` (or `cronfleet[server]`) had run."""
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + code, json.dumps(allowed_modules(server))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_sdk_imports_only_its_own_dependencies() -> None:
    ran = run_as_sdk_install(
        "import cronfleet, cronfleet.client\n"
        "from cronfleet.client.calls import spec_message\n"
        "from cronfleet import AsyncClient, Client, ClientError\n"
        "c = Client('127.0.0.1:1', token='t')\n"
        "spec = spec_message({'name': 'n', 'schedule': '*/5 * * * * *', 'command': 'true'})\n"
        "assert spec.schedule == '*/5 * * * * *'\n"
        "c.close()\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    assert ran.returncode == 0, ran.stderr
    loaded = set(json.loads(ran.stdout))
    assert "grpc" in loaded and not loaded & {"structlog", "psycopg", "cryptography", "grpc_health"}


def test_the_command_line_runs_on_the_sdk_alone() -> None:
    ran = run_as_sdk_install("from cli.app import main\nmain(['jobs', '--help'])\n")
    assert ran.returncode == 0, ran.stderr
    assert "list" in ran.stdout


def test_the_server_commands_say_what_to_install() -> None:
    """Also the check that the finder bites: `migrate` needs psycopg."""
    ran = run_as_sdk_install("from cli.app import main\nmain(['migrate'])\n")
    assert ran.returncode == 2, ran.stdout + ran.stderr
    assert ran.stderr.startswith("error: this command needs the server's libraries (psycopg is missing)")
    assert "pip install 'cronfleet[server]'" in ran.stderr


def test_the_server_side_modules_do_not_import_on_the_sdk_alone() -> None:
    ran = run_as_sdk_install("import cronfleet.rpc\n")
    assert ran.returncode == 1 and "not an SDK dependency" in ran.stderr, ran.stderr


def test_the_server_extra_has_what_every_role_imports() -> None:
    modules = [
        m.name
        for package in ("cronfleet", "cli", *ROLES)
        for m in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}.")
        if not m.name.endswith("__main__")  # runs the command
    ]
    code = f"import importlib\nfor m in {modules!r}:\n    importlib.import_module(m)\n"
    ran = run_as_sdk_install(code, server=True)
    assert ran.returncode == 0, ran.stderr


def test_the_server_libraries_are_the_server_extra() -> None:
    base = {canonicalize_name(r.name) for r in base_requirements()}
    extras: dict[str, list[str]] = PYPROJECT["project"]["optional-dependencies"]
    server = {canonicalize_name(Requirement(r).name) for r in extras["server"]}
    assert not base & set(SERVER_ONLY) and set(SERVER_ONLY) <= server
    # The dev install (the Makefile's) runs every role, so it has the server's libraries.
    assert "cronfleet[server]" in extras["dev"]
    # Nor does any base dependency pull one in.
    assert not closure(base_requirements()) & set(SERVER_ONLY)


def wheel_metadata(wheel: Path) -> tuple[list[str], dict[str, Any]]:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
        requires = re.findall(r"^Requires-Dist: (.+)$", zf.read(meta).decode(), re.M)
    by_extra: dict[str, Any] = {"": []}
    for line in requires:
        req = Requirement(line)
        extra = re.search(r'extra == "([^"]+)"', str(req.marker)) if req.marker else None
        by_extra.setdefault(extra.group(1) if extra else "", []).append(canonicalize_name(req.name))
    return names, by_extra


def test_the_wheel_is_typed_and_requires_only_the_sdks_dependencies(tmp_path: Path) -> None:
    src = tmp_path / "src"  # a copy, so the build leaves nothing in the checkout
    ignore = shutil.ignore_patterns(".venv", ".git", "node_modules", "__pycache__", "*.egg-info", "build")
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for package in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]:
        shutil.copytree(ROOT / package.rstrip("*"), src / package.rstrip("*"), ignore=ignore)
    # The build backend's own PEP 517 hook, as pip would call it (offline).
    build = f"from setuptools import build_meta; build_meta.build_wheel({str(tmp_path / 'dist')!r})"
    built = subprocess.run(
        [sys.executable, "-c", build],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    names, requires = wheel_metadata(next((tmp_path / "dist").glob("cronfleet-*.whl")))
    assert "cronfleet/py.typed" in names and "cronfleet/v1/jobs_pb2.pyi" in names
    assert sorted(requires[""]) == sorted(canonicalize_name(r.name) for r in base_requirements())
    assert set(SERVER_ONLY) <= set(requires["server"])
    assert "cronfleet" in requires["dev"]
