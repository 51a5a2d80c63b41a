"""The layers of docs/ARCHITECTURE.md hold: imports run one way (import-linter's contract in
pyproject.toml), and an import inside a function is marked as such by a comment."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "rnnlab"


def test_imports_run_one_way() -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint is None:
        pytest.fail("lint-imports is missing: install the dev extras (make setup)")
    done = subprocess.run(
        [lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "KEPT" in done.stdout and "BROKEN" not in done.stdout


def _nested_imports(tree: ast.AST) -> list[ast.stmt]:
    """Import statements inside a function, outside `if TYPE_CHECKING:` blocks."""
    found = []
    for function in ast.walk(tree):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(function):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    found.append(node)
    return found


def _explained(lines: list[str], index: int) -> bool:
    """A comment on the import's line, or above the block of imports it belongs to."""
    if "#" in lines[index]:
        return True
    while index > 0 and lines[index - 1].strip().startswith(("import ", "from ")):
        index -= 1
        if "#" in lines[index]:
            return True
    return lines[index - 1].strip().startswith("#")


def test_imports_inside_functions_say_why() -> None:
    """Only an optional or heavy dependency is imported on first use, with a comment saying so
    (on the line or the one above it)."""
    unexplained = []
    for path in sorted(SRC.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in _nested_imports(ast.parse("\n".join(lines))):
            if not _explained(lines, node.lineno - 1):
                line = lines[node.lineno - 1].strip()
                unexplained.append(f"{path.relative_to(ROOT)}:{node.lineno}: {line}")
    assert unexplained == [], "imports inside functions without a reason:\n" + "\n".join(
        unexplained
    )


def _module_imports(path: Path) -> set[str]:
    """The rnnlab modules a module imports at module level, `if TYPE_CHECKING:` included (a
    name imported from a package counts as its submodule when there is one)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(SRC.parent).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("rnnlab")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            if not base.startswith("rnnlab"):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                is_module = (SRC.parent / sub.replace(".", "/")).with_suffix(".py").is_file() or (
                    SRC.parent / sub.replace(".", "/") / "__init__.py"
                ).is_file()
                found.add(sub if is_module else base)
    return found


def test_no_circle_of_imports() -> None:
    """No module imports, even for type checking only, a module that imports it back (through
    any chain): each concept's owner sits below its users."""
    graph = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        graph[name] = _module_imports(path)
    state: dict[str, int] = {}
    circles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1 and not (node.startswith(nxt + ".") or nxt == node):
                circles.append([*trail[trail.index(nxt) :], nxt] if nxt in trail else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert circles == [], "circles of imports:\n" + "\n".join(" -> ".join(c) for c in circles)
