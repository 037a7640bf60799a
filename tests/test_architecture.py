"""The layout of docs/ARCHITECTURE.md, checked: imports point down the list of parts, and no modules import each
other in a cycle (imports inside functions count too)."""

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"

# Top-level parts of `dilated`, lowest first: a part may import only parts of a lower rank (or itself).
RANKS: dict[str, int] = {
    "_lazy": 0,
    "_version": 0,
    "_progress": 0,
    "geometry": 0,
    "layers": 1,
    "design": 1,
    "_layer_graph": 2,
    "models": 2,
    "data": 2,
    "analysis": 3,
    "keras_bridge": 4,
    "streaming": 4,
    "summaries": 5,
    "examples": 5,
    "_resolve": 5,
    "diagrams": 6,
    "training": 6,
    "explore": 7,
    "live": 7,
    "cli": 8,
    "dilated": 9,
}


def modules() -> dict[str, Path]:
    found = {}
    for path in (SRC / "dilated").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(known: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the `dilated` modules it imports anywhere in its file (``from x import y`` counts as ``x.y`` where
    that is a module)."""
    edges: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [
                    f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known else node.module
                    for alias in node.names
                ]
            else:
                continue
            edges[name].update(t for t in targets if t in known and t != name)
    return edges


def part(module: str) -> str:
    return module.split(".")[1] if "." in module else module


KNOWN = modules()
EDGES = imports(KNOWN)


def test_the_architecture_page_gives_this_order() -> None:
    """docs/ARCHITECTURE.md's "In dependency order" paragraph lists the parts as RANKS ranks them (groups of one
    rank between semicolons; the package's own ``__init__`` aside)."""
    page = (SRC.parent / "docs" / "ARCHITECTURE.md").read_text()
    paragraph = page[page.index("In dependency order") :].split("`tests/")[0]
    documented = [re.findall(r"`(\w+)`", group) for group in paragraph.split(";")]
    by_rank: dict[int, list[str]] = {}
    for name, rank in RANKS.items():
        if name != "dilated":
            by_rank.setdefault(rank, []).append(name)
    assert [g for g in documented if g] == [by_rank[rank] for rank in sorted(by_rank)]


def test_every_part_has_a_place_in_the_order() -> None:
    assert {part(m) for m in KNOWN} <= set(RANKS), "give the new part a rank here and a row in docs/ARCHITECTURE.md"


@pytest.mark.parametrize("module", sorted(KNOWN))
def test_imports_point_down(module: str) -> None:
    upward = sorted(t for t in EDGES[module] if part(t) != part(module) and RANKS[part(t)] >= RANKS[part(module)])
    assert not upward, f"{module} imports {upward}, which are not below it"


def test_no_import_cycles() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in EDGES[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(KNOWN):
        if module not in index:
            visit(module)
    assert not cycles, f"import cycles: {cycles}"
