"""The house rules of docs/architecture.md §1 that a reader checks by eye, checked here: no module of glora/ over
350 lines, and no circle among glora's modules (module-level imports: what runs when a module is imported)."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "glora"
MAX_LINES = 350


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, modules: set[str]) -> set[str]:
    """The glora modules that ``path`` imports at module level (TYPE_CHECKING blocks excluded)."""
    name, found = module_name(path), set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for sub in ast.walk(node) if isinstance(node, ast.If | ast.Try) else [node]:
            if isinstance(sub, ast.Import):
                found |= {alias.name for alias in sub.names}
            elif isinstance(sub, ast.ImportFrom):
                base = sub.module or ""
                if sub.level:
                    anchor = package.split(".")[: len(package.split(".")) - sub.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                found |= {base, *(f"{base}.{alias.name}" for alias in sub.names)}
    return {m for m in found if m in modules and m != name}


def graph() -> dict[str, set[str]]:
    """module -> the glora modules it imports; a package's face handing on its own submodules' names is left
    out (that is not a circle of work)."""
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(f) for f in files}
    return {module_name(f): {m for m in imported(f, modules) if not m.startswith(module_name(f) + ".")}
            for f in files}


def test_the_graph_is_read():
    """The reader finds the imports it must (else the next test could not fail)."""
    g = graph()
    assert "glora.config" in g["glora.workflow"]
    assert "glora.methods.base" in g["glora.methods.glora.layer"]
    assert sum(map(len, g.values())) > 100
    with pytest.raises(CycleError):  # and a circle is found when there is one
        TopologicalSorter({**g, "glora.config": g["glora.config"] | {"glora.workflow"}}).prepare()


def test_no_circle_among_glora_modules():
    try:
        TopologicalSorter(graph()).prepare()
    except CycleError as circle:
        pytest.fail(f"import circle: {' -> '.join(circle.args[1])}")


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_over_350_lines(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES
