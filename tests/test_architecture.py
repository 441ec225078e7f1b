"""The layering of DESIGN.md "Layout and layers" holds, and its contracts bite (decision 0018)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("schemas", "policies", "protocol", "node", "broker", "palermo", "deploy")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _copy_tree(dest: Path) -> Path:
    """The product packages and pyproject.toml (where the contracts are) under ``dest``."""
    for name in PACKAGES:
        shutil.copytree(
            ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH first, so grimp reads the copy rather than the installed (editable) tree.
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_contracts_pass_on_the_tree(tmp_path: Path) -> None:
    """lint-imports keeps every contract on an untouched copy of the tree."""
    result = _lint_imports(_copy_tree(tmp_path))
    assert 0 == result.returncode, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_a_node_module_importing_the_broker_fails(tmp_path: Path) -> None:
    """One wrong import (the node importing the broker) breaks both contracts, naming both
    modules."""
    tree = _copy_tree(tmp_path)
    with (tree / "node" / "receipts.py").open("a") as module:
        module.write("\nimport broker.streams  # noqa: E402,F401\n")
    result = _lint_imports(tree)
    assert 1 == result.returncode, result.stdout + result.stderr
    assert "Contracts: 0 kept, 2 broken." in result.stdout
    assert "node.receipts -> broker.streams" in result.stdout


def test_the_policy_layer_importing_the_protocol_fails(tmp_path: Path) -> None:
    """A lower layer importing a higher one (policies -> protocol) breaks the layers contract."""
    tree = _copy_tree(tmp_path)
    with (tree / "policies" / "_decision.py").open("a") as module:
        module.write("\nfrom protocol import crypto  # noqa: E402,F401\n")
    result = _lint_imports(tree)
    assert 1 == result.returncode, result.stdout + result.stderr
    assert "policies._decision -> protocol.crypto" in result.stdout


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (or a module importing itself),
    by Tarjan's algorithm, iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            module, i = work.pop()
            if i == 0:
                index[module] = low[module] = len(index)
                stack.append(module)
                on_stack.add(module)
            if i < len(edges[module]):
                work.append((module, i + 1))
                target = edges[module][i]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[module] = min(low[module], index[target])
                continue
            if low[module] == index[module]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == module:
                        break
                if len(component) > 1 or module in edges[module]:
                    found.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[module])
    return found


def test_no_import_cycles_between_modules() -> None:
    """No module imports itself through others, imports inside functions included (grimp's
    graph has them)."""
    graph = grimp.build_graph(*PACKAGES)
    assert [] == _cycles(graph)


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The check above would see a cycle: a -> b -> c -> a and d -> d."""
    graph = grimp.ImportGraph()
    for importer, imported in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "e"), ("d", "d")]:
        graph.add_import(importer=importer, imported=imported)
    assert [["a", "b", "c"], ["d"]] == sorted(_cycles(graph))


MAX_MODULE_LINES = 500


def test_no_product_module_is_over_500_lines() -> None:
    """Every product module stays small (issue 13): one concept per module, about 500 lines at
    most; a module that grows past it is split by concept, its public face re-exporting."""
    offenders = [
        f"{path.relative_to(ROOT)}: {lines}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    ]
    assert [] == offenders
