"""The import structure of ``src/stackcoder``, read from the AST: no module imports itself in a
circle, the packages form layers (``tokenizer`` and ``model`` at the bottom), and the light entry
points stay light. docs/architecture.md draws the layers."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGES = {"tokenizer", "data", "model", "train", "serve", "eval", "index"}
# what each bottom package may import besides itself: the root package (its version) and errors
LEAVES = {"tokenizer": {"stackcoder", "stackcoder.errors"}, "model": {"stackcoder", "stackcoder.errors"}}
LEAF_PACKAGES = {"model": {"tokenizer"}}  # the model takes its special tokens from the tokenizer


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str:
    """The stackcoder module an import names (``from a.b import c``: ``a.b.c`` if a module, else ``a.b``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _imports(module: str, *, top_level_only: bool) -> set[str]:
    """The stackcoder modules ``module`` imports: at the top (``if TYPE_CHECKING`` blocks included,
    a type-only cycle blurs the files as much), or anywhere (function-level imports included)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    if top_level_only:
        nodes = []
        for node in tree.body:
            nodes += node.body if isinstance(node, ast.If) else [node]
    else:
        nodes = list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*up, base] if base else up)
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        for name in names:
            if name.split(".")[0] == "stackcoder" and (target := _resolve(name)) and target != module:
                found.add(target)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_module_imports_itself_in_a_circle():
    graph = {m: _imports(m, top_level_only=True) for m in MODULES}
    assert _cycles(graph) == []


def test_packages_form_layers():
    graph: dict[str, set[str]] = {p: set() for p in PACKAGES}
    for module in MODULES:
        if _package(module) in PACKAGES:
            for target in _imports(module, top_level_only=False):
                if _package(target) in PACKAGES and _package(target) != _package(module):
                    graph[_package(module)].add(_package(target))
    assert _cycles(graph) == [], graph
    for leaf, allowed in LEAVES.items():
        for module in (m for m in MODULES if _package(m) == leaf):
            others = {
                t
                for t in _imports(module, top_level_only=False)
                if _package(t) != leaf
                and t not in allowed
                and _package(t) not in LEAF_PACKAGES.get(leaf, set())
            }
            assert not others, f"{module} imports {sorted(others)}"


def test_training_a_tokenizer_does_not_load_the_pipeline_engine():
    """`stackcoder tokenizer train` reads two parquet columns: datatrove (and the readers it brings)
    stays unloaded."""
    code = (
        "import sys\n"
        "import stackcoder.cli.tokenizer, stackcoder.data.corpus, stackcoder.tokenizer.run\n"
        "loaded = [m for m in ('datatrove', 'stackcoder.data.readers.reader') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": str(SRC)})
