"""The package's layers, read from its source: ``bn_utils``'s import graph (every import, at any
depth of the code, imports inside functions included) has no cycle, and a module imports only
from its own layer or the layers below it (the concept code never imports a chapter's experiment,
the closing page's verdicts included)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bn_utils"

# Lowest first. A module belongs to the layer that lists its top-level name under bn_utils (a
# package's modules all belong to its layer). A new module must be listed here.
LAYERS = {
    "base": ("runtime", "files"),
    "nn": ("nn",),
    "training": ("data", "training"),
    "book": ("book",),
    "exercises": ("exercises",),
    "experiments": ("experiments",),
}
RANK = {name: i for i, modules in enumerate(LAYERS.values()) for name in modules}


def _modules() -> dict[str, Path]:
    """Return ``{dotted name: file}`` of every module of the package."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _targets(name: str, path: Path, node: ast.Import | ast.ImportFrom, known: set) -> set[str]:
    """Return the package modules one import statement of module ``name`` imports."""
    if isinstance(node, ast.Import):
        wanted = [a.name for a in node.names]
    else:
        if node.level:
            here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
            base = ".".join(here[: len(here) - node.level + 1] + [node.module] * bool(node.module))
        else:
            base = node.module or ""
        # ``from package import module`` imports the module, ``from module import name`` the module
        wanted = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
    out = set()
    for target in wanted:
        while target and target not in known:      # ``import bn_utils.x.y`` where y is a name
            target = target.rpartition(".")[0]
        parts = target.split(".")
        if parts[0] != "bn_utils":
            continue
        # importing a.b.c first runs the packages a.b above it: unless the importer is inside them
        for i in range(2, len(parts) + 1):
            ancestor = ".".join(parts[:i])
            if not (name + ".").startswith(ancestor + "."):
                out.add(ancestor)
    return out - {name}


def import_graph() -> dict[str, set[str]]:
    """Return ``{module: the package modules it imports}`` for every module of ``bn_utils``."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        graph[name] = set().union(*(_targets(name, path, node, set(modules))
                                    for node in ast.walk(tree)
                                    if isinstance(node, (ast.Import, ast.ImportFrom))))
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected parts of ``graph`` with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while not part or part[-1] != v:
                part.append(stack.pop())
                on_stack.discard(part[-1])
            if len(part) > 1:
                found.append(sorted(part))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return RANK.get(parts[1]) if len(parts) > 1 else None


def test_the_package_has_no_import_cycle():
    assert cycles(import_graph()) == []


def test_every_module_belongs_to_a_layer():
    unplaced = sorted(m for m in import_graph() if m != "bn_utils" and _layer(m) is None)
    assert unplaced == [], f"modules in no layer of tests/test_layers.py's LAYERS: {unplaced}"


def test_imports_only_run_downward():
    upward = sorted(f"{m} ({list(LAYERS)[_layer(m)]}) imports {t} ({list(LAYERS)[_layer(t)]})"
                    for m, targets in import_graph().items() if m != "bn_utils"
                    for t in targets if t != "bn_utils" and None not in (_layer(m), _layer(t))
                    and _layer(t) > _layer(m))
    assert upward == []


def test_no_concept_module_imports_an_experiment():
    top = {"bn_utils.experiments"}
    leaks = sorted(f"{m} imports {t}" for m, targets in import_graph().items()
                   if m.split(".")[:2] != ["bn_utils", "experiments"] and m not in top
                   for t in targets if any(t == x or t.startswith(x + ".") for x in top))
    assert leaks == []


def test_the_graph_sees_cycles_and_imports_hidden_in_functions(tmp_path, monkeypatch):
    """The reader of the graph itself: a cycle closed by an import inside a function, a relative
    import two levels up, and a submodule import that runs its package's ``__init__``."""
    pkg = tmp_path / "bn_utils"
    (pkg / "experiments" / "ch").mkdir(parents=True)
    files = {"__init__.py": "", "claims.py": "def row():\n    from .experiments.ch import heads\n",
             "experiments/__init__.py": "", "experiments/ch/__init__.py": "from . import heads\n",
             "experiments/ch/heads.py": "from ... import claims\n", "results.py": "import os\n",
             "verdicts.py": "from bn_utils.experiments.ch.heads import x\n"}
    for rel, text in files.items():
        (pkg / rel).write_text(text)
    monkeypatch.setitem(globals(), "PACKAGE", pkg)
    graph = import_graph()
    assert graph["bn_utils.claims"] == {"bn_utils.experiments", "bn_utils.experiments.ch",
                                        "bn_utils.experiments.ch.heads"}
    assert graph["bn_utils.experiments.ch.heads"] == {"bn_utils.claims"}
    assert "bn_utils.experiments.ch" in graph["bn_utils.verdicts"]
    assert cycles(graph) == [["bn_utils.claims", "bn_utils.experiments.ch",
                              "bn_utils.experiments.ch.heads"]]


def _prefix_groups(stems) -> set[str]:
    """Return the first words that two file names share (``norm`` of ``norm_a``, ``norm_b``), or
    that one name shares with a file of that name or its plural (``stacked`` and ``stacked_mlp``,
    ``norms`` and ``norm_registry``)."""
    stems = list(stems)
    prefixes = [s.split("_")[0] for s in stems if "_" in s]
    return {p for p in prefixes if prefixes.count(p) + (p in stems or p + "s" in stems) > 1}


def test_the_prefix_check_sees_pairs_plurals_and_families():
    assert _prefix_groups(["stacked", "stacked_mlp"]) == {"stacked"}
    assert _prefix_groups(["norms", "norm_registry"]) == {"norm"}
    assert _prefix_groups(["in_practice", "in_practice_costs", "data"]) == {"in"}
    assert _prefix_groups(["norms", "models", "train_loop"]) == set()


def test_no_group_of_modules_is_named_by_a_prefix():
    """A family of modules is a package (``nn/``, ``training/``), not files sharing a prefix
    (``norm_registry.py``, ``norm_variants.py``, …) in the same folder. Inside one chapter's
    package, files are its sub-experiments (``batch_mates``, ``batch_size_one``) and may share words."""
    for folder in [PACKAGE, *(p for p in PACKAGE.iterdir() if (p / "__init__.py").exists())]:
        grouped = _prefix_groups(p.stem for p in folder.glob("*.py") if p.stem != "__init__")
        assert not grouped, f"{folder.relative_to(PACKAGE.parent)}: modules named by the prefix(es) {grouped}"


def test_no_group_of_scripts_is_named_by_a_prefix():
    """The same rule for the scripts: a benchmark family is a folder (``benchmarks/gpu/``,
    ``benchmarks/ch05_cifar_inception/``), not ``gpu_check.sh`` beside ``gpu_slice.py``."""
    root = PACKAGE.parent
    for folder in (root / "benchmarks", root / "tools"):
        grouped = _prefix_groups(p.stem for p in folder.iterdir() if p.suffix in (".py", ".sh"))
        assert not grouped, f"{folder.relative_to(root)}: scripts named by the prefix(es) {grouped}"


def test_no_function_of_the_training_layer_is_over_sixty_lines_of_code():
    """``training/`` reads function by function: none longer than ~60 lines, its docstring aside."""
    long = []
    for path in (PACKAGE / "training").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body[1:] if ast.get_docstring(node) else node.body
                n = node.end_lineno - (body[0].lineno if body else node.lineno) + 1
                if n > 60:
                    long.append(f"{path.name}:{node.name} ({n} lines)")
    assert not long, long


def test_no_package_hides_one_of_its_modules_behind_a_name_it_imports():
    import importlib
    import types

    for name, path in _modules().items():
        if path.name != "__init__.py":
            continue
        package = importlib.import_module(name)
        for child in path.parent.glob("*.py"):
            if child.stem == "__init__" or not hasattr(package, child.stem):
                continue
            attr = getattr(package, child.stem)
            assert isinstance(attr, types.ModuleType), (
                f"{name}.{child.stem} is {attr!r}, not the module {child.stem}.py: rename what hides it")


# The one upward reference the layers allow: the headless runner's {chapter: config class}
# registry names each chapter's class as "module:Class" and imports it when a chapter is run.
LATE_BOUND = {"bn_utils.book.run"}


def test_only_the_runners_registry_names_a_higher_layer_by_string():
    import re

    dotted = re.compile(r"^(bn_utils(?:\.\w+)+)(?::\w+)?$")
    found = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and dotted.match(node.value):
                target = dotted.match(node.value).group(1)
                if None not in (_layer(name), _layer(target)) and _layer(target) > _layer(name):
                    found.append((name, node.value))
    assert found and {name for name, _ in found} == LATE_BOUND, found


def _dynamic_imports(path) -> list[int]:
    """Return the lines of ``path`` that import a module by a computed name (``importlib.import_module``,
    ``__import__``), which the import graph cannot see."""
    return [node.lineno for node in ast.walk(ast.parse(path.read_text(), str(path)))
            if isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "__import__")]


def test_only_the_runners_registry_imports_a_module_by_a_computed_name(tmp_path):
    found = {name: lines for name, path in _modules().items() if (lines := _dynamic_imports(path))}
    assert set(found) == LATE_BOUND, found
    sneaky = tmp_path / "models.py"
    sneaky.write_text("import importlib\ndef f(n):\n    return importlib.import_module(f'bn_utils.experiments.{n}')\n")
    assert _dynamic_imports(sneaky) == [3]


# what reads or writes a record in the store (``book/results.py``)
STORE_CALLS = {"save", "read", "load", "best_stored", "best_record", "stand_in", "load_or_run"}


def _store_calls(path) -> list[str]:
    """Return the ``results.<fn>(...)`` calls of ``path`` that read or write the store."""
    return [f"{path.name}:{node.lineno} results.{node.func.attr}"
            for node in ast.walk(ast.parse(path.read_text(), str(path)))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in STORE_CALLS and getattr(node.func.value, "id", "") == "results"]


def test_in_a_chapter_package_only_its_experiment_module_calls_the_store():
    """Each chapter package has one module that stores and reads its records (``experiment``);
    its sub-experiments compute, its analysis and figures take the records they are given."""
    packages = [p for p in (PACKAGE / "experiments").iterdir() if (p / "__init__.py").exists()]
    assert len(packages) >= 6
    stray = [call for pkg in packages for path in sorted(pkg.glob("*.py")) if path.stem != "experiment"
             for call in _store_calls(path)]
    assert not stray, f"store calls outside experiment.py: {stray}"
    assert all((pkg / "experiment.py").exists() for pkg in packages), [p.name for p in packages]
    assert _store_calls(PACKAGE / "experiments" / "ch05_cifar_inception" / "experiment.py")
