"""The layout the code keeps (README "Layout", pyproject.toml's import-linter contracts):
every module sits in a layer, no import cycle between modules, no module over 450 lines, no
private name imported across packages, importing a package never imports torch, and
docs/config.md is what the config dataclasses say."""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("export", "seq2seq", "generate", "classify", "forecast")
MAX_LINES = 450


def modules() -> dict[str, Path]:
    """Every module of the packages: dotted name -> file."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def contracts() -> list[dict]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["tool"]["importlinter"]["contracts"]


def layer_entries() -> list[str]:
    (layers,) = [c for c in contracts() if c["type"] == "layers"]
    entries = []
    for layer in layers["layers"]:
        entries += [name.strip() for name in layer.replace("|", ":").split(":")]
    return entries


def test_every_module_is_named_in_exactly_one_layer():
    entries = layer_entries()
    unplaced, doubly = [], []
    for name in modules():
        if name in PACKAGES:  # the top-level package inits hold only docstrings
            continue
        holders = [e for e in entries if name == e or name.startswith(e + ".")]
        if not holders:
            unplaced.append(name)
        elif len(holders) > 1:
            doubly.append(name)
    assert not unplaced, f"modules in no import-linter layer (pyproject.toml): {unplaced}"
    assert not doubly, f"modules in several layers: {doubly}"


def test_the_translation_family_is_listed_whole_in_the_family_contract():
    """generate may not import translation: the contract lists translation's modules, so a new
    module of seq2seq (outside the core) must be added there."""
    (contract,) = [c for c in contracts() if c.get("source_modules") == ["generate"]]
    translation = {
        name
        for name in modules()
        if name.startswith("seq2seq.") and not name.startswith("seq2seq.core")
    }
    assert translation == set(contract["forbidden_modules"])


def direct_imports(path: Path, name: str) -> list[tuple[str, list[str], int]]:
    """(imported module, names, line) of every import statement in a module of ours (function
    bodies included: a lazy import is still a dependency)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")
                base = ".".join(parent[: len(parent) - node.level + 1] + ([base] if base else []))
            found.append((base, [alias.name for alias in node.names], node.lineno))
    return found


def test_no_import_cycle_between_modules():
    known = modules()
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for imported, names, _ in direct_imports(path, name):
            targets = [f"{imported}.{n}" for n in names] + [imported]
            for target in targets:
                if target in known and target != name:
                    graph[name].add(target)
                    break
    # Tarjan's strongly connected components: any component of two or more is a cycle
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert not cycles, f"import cycles: {cycles}"


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_module_is_longer_than_the_limit(name):
    lines = modules()[name].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{name} has {lines} lines (limit {MAX_LINES}): split it"


def package_of(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def test_no_private_name_is_imported_across_packages():
    known = modules()
    crossings = []
    for name, path in known.items():
        here = package_of(name, path)
        for imported, names, line in direct_imports(path, name):
            if imported.split(".")[0] not in PACKAGES:
                continue
            there = (
                imported
                if imported in known and known[imported].name == "__init__.py"
                else (imported.rpartition(".")[0])
            )
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private and there != here:
                crossings.append(
                    f"{path.relative_to(ROOT)}:{line} imports {private} from {imported}"
                )
    assert not crossings, "\n".join(crossings)


def test_importing_a_package_imports_nothing_heavy():
    code = (
        "import sys\n"
        "import export, export.runtime, seq2seq, seq2seq.core, generate, classify, forecast\n"
        "heavy = [m for m in ('torch', 'onnx', 'yaml', 'sacrebleu', 'matplotlib') "
        "if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_config_reference_is_up_to_date():
    spec = importlib.util.spec_from_file_location(
        "make_config_reference", ROOT / "scripts" / "make_config_reference.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    current = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    assert current == script.render(), (
        "docs/config.md is stale: run python scripts/make_config_reference.py"
    )


@pytest.mark.skipif(
    importlib.util.find_spec("importlinter") is None, reason="import-linter is not installed"
)
def test_lint_imports_keeps_every_contract():
    executable = Path(sys.executable).with_name("lint-imports")
    command = [str(executable)] if executable.exists() else ["lint-imports"]
    result = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stdout[-3000:]
