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
