"""Dependencies point one way (pure and fast: reads kokorod/ with ``ast``).

Two rules, over the imports written in kokorod/ (imports under ``if
TYPE_CHECKING:`` are for the type checker and are skipped by both):

- no import circle between modules, counting the imports that run when a module
  is loaded (module level, including ``try``/``if`` blocks): an import inside a
  function runs later and cannot deadlock a load, so it does not count here;
- no import, at module level or inside a function, from a lower layer to a
  higher one (``LAYERS`` below), and none between two different groups on the
  same rank: the client and the daemon never import each other.

And ``import kokorod.client`` (what both agent plugins load) loads neither the
engines nor soxr nor soundfile.

To see the graph this test reads: ``python tests/test_layers.py`` prints every
module's imports, then any circle and any import against the layers.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "kokorod"

# Lowest first. A module belongs to the group whose prefix matches it longest.
# An import may go to a lower rank or stay in its own group.
LAYERS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    # Leaves: errors, the model's facts, the language table, words timed in
    # samples, logging and metrics helpers that know nothing of the rest.
    (0, "leaves", ("kokorod", "kokorod.errors", "kokorod.model_facts", "kokorod.text.languages", "kokorod.timing",
                   "kokorod.speech.chunk", "kokorod.torch_free", "kokorod.logs", "kokorod.web")),
    (1, "assets", ("kokorod.assets",)),
    (2, "text", ("kokorod.text",)),
    (3, "engine", ("kokorod.engine",)),
    (4, "audio", ("kokorod.audio",)),
    (5, "speech", ("kokorod.speech", "kokorod.synthesizer")),
    (6, "protocol", ("kokorod.protocol",)),
    # The daemon's settings and credentials, read by the daemon, its front-ends and the CLI.
    (7, "settings", ("kokorod.config", "kokorod.auth")),
    # The daemon and the client both stand on the protocol and never on each other.
    (8, "daemon", ("kokorod.daemon", "kokorod.metrics")),
    (8, "client", ("kokorod.client",)),
    (9, "frontends", ("kokorod.frontends",)),
    (10, "integrations", ("kokorod.integrations",)),
    # The composition root: the one module that wires the core to its adapters.
    (10, "app", ("kokorod.app",)),
    # The command line (kokorod.cli: a module per command family, and say/pipe's
    # daemon and in-process paths) and what only it runs: the login service,
    # doctor, narration.
    (11, "cli", ("kokorod.cli", "kokorod.__main__", "kokorod.service", "kokorod.assets.doctor", "kokorod.narrate")),
)

# Known edges against the layers, each with the work that removes it. Remove an
# entry when that lands: the test then holds the fix.
ALLOWED: dict[tuple[str, str], str] = {
}


@dataclass
class Module:
    name: str
    is_package: bool
    loads: set[str] = field(default_factory=set)     # imported when the module is loaded
    deferred: set[str] = field(default_factory=set)  # imported inside functions


def _modules() -> dict[str, Module]:
    mods: dict[str, Module] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        mods[".".join(parts)] = Module(".".join(parts), is_package)
    return mods


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _targets(node: ast.Import | ast.ImportFrom, module: Module, known: dict[str, Module]) -> set[str]:
    """The kokorod modules an import statement loads (``from pkg import mod``
    names the submodule; ``from mod import name`` the module)."""
    def owner(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            base = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
            base = base[:len(base) - (node.level - 1)]
            origin = ".".join(base + ([node.module] if node.module else []))
        else:
            origin = node.module or ""
        names = [f"{origin}.{a.name}" if f"{origin}.{a.name}" in known else origin for a in node.names]
    found = {owner(n) for n in names if n == "kokorod" or n.startswith("kokorod.")}
    return {n for n in found if n is not None and n != module.name}


def import_graph() -> dict[str, Module]:
    mods = _modules()
    for module in mods.values():
        path = PACKAGE.parent.joinpath(*module.name.split("."))
        path = path / "__init__.py" if module.is_package else path.with_suffix(".py")
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))

        def visit(body: list[ast.stmt], deferred: bool) -> None:
            for node in body:
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    (module.deferred if deferred else module.loads).update(_targets(node, module, mods))
                elif isinstance(node, ast.If) and _is_type_checking(node.test):
                    visit(node.orelse, deferred)
                elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    visit(node.body, True)
                else:
                    visit([n for n in ast.iter_child_nodes(node) if isinstance(n, ast.stmt)], deferred)

        visit(tree.body, False)
    return mods


def circles(mods: dict[str, Module]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), over the
    imports that run at load time."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(mods[v].loads):
            if w not in index:
                connect(w)
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
                found.append(sorted(component))

    for name in sorted(mods):
        if name not in index:
            connect(name)
    return found


def group_of(name: str) -> tuple[int, str]:
    best: tuple[int, int, str] | None = None
    for rank, group, prefixes in LAYERS:
        for prefix in prefixes:
            if name == prefix or name.startswith(prefix + "."):
                if best is None or len(prefix) > best[0]:
                    best = (len(prefix), rank, group)
    assert best is not None, f"{name} is in no layer: add it to LAYERS"
    return best[1], best[2]


def _allowed(src: str, dst: str) -> bool:
    def match(pattern: str, name: str) -> bool:
        return name.startswith(pattern[:-1]) if pattern.endswith("*") else name == pattern
    return any(match(a, src) and match(b, dst) for a, b in ALLOWED)


def against_layers(mods: dict[str, Module]) -> list[str]:
    wrong = []
    for module in mods.values():
        rank, group = group_of(module.name)
        for target in sorted(module.loads | module.deferred):
            t_rank, t_group = group_of(target)
            if t_group == group or t_rank < rank or _allowed(module.name, target):
                continue
            wrong.append(f"{module.name} ({group}, rank {rank}) imports {target} ({t_group}, rank {t_rank})")
    return wrong


def test_every_module_has_a_layer() -> None:
    for name in import_graph():
        group_of(name)


def test_no_import_circle() -> None:
    assert circles(import_graph()) == []


def test_imports_point_down_the_layers() -> None:
    assert against_layers(import_graph()) == []


def test_the_allow_list_holds_only_edges_that_exist() -> None:
    """An allowed edge that no longer exists is stale: remove it so the test
    holds the fix."""
    mods = import_graph()
    edges = [(m.name, t) for m in mods.values() for t in m.loads | m.deferred]
    for a, b in ALLOWED:
        assert any(_allowed(s, d) and (s.startswith(a[:-1]) if a.endswith("*") else s == a) for s, d in edges
                   if (d.startswith(b[:-1]) if b.endswith("*") else d == b)), f"stale allow-list entry {a} -> {b}"


def test_the_checker_sees_a_circle_and_an_upward_import() -> None:
    """The rules above are only as good as the graph: a made-up circle and a
    made-up upward import are caught."""
    mods = {n: Module(n, False) for n in ("kokorod.text.a", "kokorod.text.b", "kokorod.engine.x")}
    mods["kokorod.text.a"].loads.add("kokorod.text.b")
    mods["kokorod.text.b"].loads.add("kokorod.text.a")
    mods["kokorod.text.b"].deferred.add("kokorod.engine.x")
    assert circles(mods) == [["kokorod.text.a", "kokorod.text.b"]]
    assert against_layers(mods) == ["kokorod.text.b (text, rank 2) imports kokorod.engine.x (engine, rank 3)"]


def test_the_client_loads_no_engine_and_no_audio_libraries() -> None:
    """Both agent plugins import kokorod.client; it must stay light."""
    probe = ("import sys, kokorod.client; "
             "print(' '.join(m for m in ('kokorod.engine', 'kokorod.synthesizer', 'kokorod.text', 'soxr', "
             "'soundfile', 'onnxruntime', 'av') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         cwd=PACKAGE.parent)
    assert out.stdout.split() == []


def test_no_test_module_imports_another() -> None:
    """Shared helpers live in tests/support/; a test module imports none of the
    others (pytest would collect the imported tests twice, and a helper moved
    with its test breaks the importers). The folders under tests/unit and
    tests/integration are packages, so a relative import there could only
    reach another test module: none is allowed."""
    tests = Path(__file__).resolve().parent
    offenders = []
    for path in sorted(tests.rglob("*.py")):
        if "support" in path.relative_to(tests).parts[:-1]:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                offenders.append(f"{path.relative_to(tests)} imports {'.' * node.level}{node.module or ''}")
                continue
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                parts = name.split(".")
                if parts[0] in ("e2e", "unit", "integration") or any(p.startswith("test_") for p in parts) or (
                        parts[0] == "tests" and len(parts) > 1 and parts[1] in ("e2e", "unit", "integration")):
                    offenders.append(f"{path.relative_to(tests)} imports {name}")
    assert offenders == []


def test_test_folders_mirror_the_package() -> None:
    """tests/unit and tests/integration mirror kokorod/: a folder there is named
    after the subpackage whose tests it holds (the tests of
    kokorod/text/segmenter.py are tests/unit/text/test_segmenter.py), and is a
    package, so the same file name may appear in two folders."""
    tests = Path(__file__).resolve().parent
    wrong = []
    for tier in ("unit", "integration"):
        for folder in sorted(p for p in (tests / tier).rglob("*") if p.is_dir() and p.name != "__pycache__"):
            if not (PACKAGE / folder.relative_to(tests / tier)).is_dir():
                wrong.append(f"{folder.relative_to(tests)} mirrors no kokorod subpackage")
            if not (folder / "__init__.py").is_file():
                wrong.append(f"{folder.relative_to(tests)} has no __init__.py")
    assert wrong == []


if __name__ == "__main__":
    graph = import_graph()
    for name, module in sorted(graph.items()):
        print(name, "->", " ".join(sorted(module.loads)),
              ("| later: " + " ".join(sorted(module.deferred - module.loads))) if module.deferred - module.loads else "")
    for circle in circles(graph):
        print("CIRCLE:", " <-> ".join(circle))
    for line in against_layers(graph):
        print("AGAINST THE LAYERS:", line)


def test_no_two_modules_import_each_other_even_for_types() -> None:
    """Stricter than the load-time rule above for pairs: two modules never name
    each other in an import, under ``TYPE_CHECKING`` or in a function included
    (a type the other side needs is described there as a Protocol)."""
    names: dict[str, Path] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    edges: dict[str, set[str]] = {name: set() for name in names}
    for name, path in names.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            edges[name].update(t for t in targets if t in names and t != name)
    pairs = sorted({tuple(sorted((a, b))) for a in edges for b in edges[a] if a in edges[b]})
    assert pairs == []
