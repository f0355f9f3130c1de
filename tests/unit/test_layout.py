"""The layout's rules, read from the imports: the kernel imports no role,
no role imports another, and only ``launch`` composes them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROLES = ("coordinator", "scheduler", "worker", "gateway")


def imported_packages(package: str) -> dict[str, set[str]]:
    """{module file: top-level packages it imports} for every module of ``package``."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        if "v1" in path.relative_to(ROOT).parts:
            continue  # generated stubs
        tops: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                tops.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                tops.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = tops
    return found


def test_the_kernel_imports_no_role() -> None:
    for module, tops in imported_packages("cronfleet").items():
        assert not tops & {*ROLES, "launch"}, f"{module} imports {sorted(tops & {*ROLES, 'launch'})}"


@pytest.mark.parametrize("role", ROLES)
def test_a_role_imports_no_other_role(role: str) -> None:
    others = {*ROLES, "launch"} - {role}
    for module, tops in imported_packages(role).items():
        assert not tops & others, f"{module} imports {sorted(tops & others)}"


def test_the_cli_reaches_a_cluster_only_through_the_sdk() -> None:
    """`cli` imports no role; `up` and the role commands go through `launch`."""
    for module, tops in imported_packages("cli").items():
        assert not tops & set(ROLES), f"{module} imports {sorted(tops & set(ROLES))}"
