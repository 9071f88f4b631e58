"""The dependency rules of docs/architecture.md, as import-linter contracts in pyproject.toml.

One test runs every contract on the tree as it is; the others copy the tree, break one rule
on purpose and check that the matching contract fails, so a contract that cannot fail (a
typo in a module name, a rule that no longer covers the package) is caught too.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
CONTRACTS = ("layers", "pure", "aws-edge", "faces-on-top")
# Prints every import cycle between modules of the tree in the current folder, one a line
# (strongly connected components of grimp's import graph, imports inside functions included).
FIND_CYCLES = """
import grimp
graph = grimp.build_graph("tracker", "jobs", cache_dir=None)
modules = sorted(graph.modules)
index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]
def visit(start):
    work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
    index[start] = low[start] = counter[0]; counter[0] += 1
    stack.append(start); on_stack.add(start)
    while work:
        node, children = work[-1]
        for child in children:
            if child not in index:
                index[child] = low[child] = counter[0]; counter[0] += 1
                stack.append(child); on_stack.add(child)
                work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                break
            if child in on_stack:
                low[node] = min(low[node], index[child])
        else:
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop(); on_stack.discard(member); component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(" <-> ".join(sorted(component)))
for module in modules:
    if module not in index:
        visit(module)
print("\\n".join(found))
"""


def lint(root: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    """Run lint-imports with the repository's contracts on the tree at ``root``."""
    args = [str(LINT_IMPORTS), "--no-cache", "--no-logo"]
    for contract in contracts:
        args += ["--contract", contract]
    return subprocess.run(args, cwd=root, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packages and the contracts, copied so a test can break a rule without harm."""
    root = tmp_path_factory.mktemp("arch")
    for package in ("tracker", "jobs"):
        shutil.copytree(
            REPO / package, root / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def cycles(root: Path) -> list[str]:
    """The import cycles between modules of the tree at ``root``."""
    result = subprocess.run(
        [sys.executable, "-c", FIND_CYCLES], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line]


def _broken(root: Path, module: str, line: str, contract: str) -> str:
    """Append ``line`` to ``module`` in the copy, lint one contract, restore; its output."""
    path = root / module
    original = path.read_text(encoding="utf-8")
    try:
        path.write_text(original + f"\n{line}\n", encoding="utf-8")
        result = lint(root, contract)
    finally:
        path.write_text(original, encoding="utf-8")
    assert result.returncode != 0, result.stdout
    return result.stdout


def test_every_contract_is_kept() -> None:
    result = lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in result.stdout


def test_pure_module_importing_boto3_breaks_the_pure_contract(tree_copy: Path) -> None:
    out = _broken(tree_copy, "tracker/cost/engine.py", "import boto3  # noqa", "pure")
    assert "tracker.cost.engine -> boto3" in out


def test_pure_module_reading_the_clock_breaks_the_pure_contract(tree_copy: Path) -> None:
    out = _broken(tree_copy, "tracker/alert/budgets.py", "import tracker.clock  # noqa", "pure")
    assert "tracker.alert.budgets -> tracker.clock" in out


def test_store_importing_boto3_breaks_the_aws_edge_contract(tree_copy: Path) -> None:
    out = _broken(tree_copy, "tracker/store/query.py", "import botocore  # noqa", "aws-edge")
    assert "tracker.store.query -> botocore" in out


def test_library_importing_jobs_breaks_the_faces_contract(tree_copy: Path) -> None:
    out = _broken(tree_copy, "tracker/report/views.py", "import jobs  # noqa", "faces-on-top")
    assert "tracker.report.views -> jobs" in out


def test_edge_importing_a_service_breaks_the_layers(tree_copy: Path) -> None:
    line = "import tracker.collect.service  # noqa"
    out = _broken(tree_copy, "tracker/store/query.py", line, "layers")
    assert "tracker.store.query -> tracker.collect.service" in out


def test_no_import_cycles_between_modules() -> None:
    assert cycles(REPO) == []


def test_a_new_import_cycle_is_found(tree_copy: Path) -> None:
    path = tree_copy / "tracker/store/schema.py"
    original = path.read_text(encoding="utf-8")
    try:
        path.write_text(original + "\nimport tracker.store.query  # noqa\n", encoding="utf-8")
        found = cycles(tree_copy)
    finally:
        path.write_text(original, encoding="utf-8")
    assert any("tracker.store.query" in c and "tracker.store.schema" in c for c in found), found
