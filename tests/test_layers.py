"""The package's layers: each module imports only its own layer and those below it, and no module imports,
directly or through others, a module that imports it back.

    layer        modules                                                    may import
    foundation   errors                                                     -
    io           io.*  (files, pictures, video, locks)                      foundation
    core         masks, box_masks, tiling, stitching, label_map,             io, foundation
                 coco_format, model_contract, detections, postprocess, evaluation, shapes, shapes_video, tracking.*,
                 visualization.*, label_exports.*
    models       models.*  (finding, describing, loading, engines)           core, io, foundation
    predictor    predictor, dataset_predictions, mrcnn (matterport's API)   models and below
    training     training.*                                                 predictor and below
    apps         apps.*  (the commands and their pipelines)                 training and below
    package      object_detection_utils (__init__: the public names)        everything

The root scripts sit above it all and only call a command of apps/.
"""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
from pathlib import Path

import object_detection_utils

PACKAGE = object_detection_utils.__name__
REPO = Path(__file__).resolve().parents[1]

LAYERS = ("foundation", "io", "core", "models", "predictor", "training", "apps", "package")
# Module (or package prefix) -> layer; the longest matching prefix wins.
LAYER_OF = {
    "errors": "foundation",
    "io": "io",
    "masks": "core", "box_masks": "core", "tiling": "core", "stitching": "core",
    "label_map": "core", "coco_format": "core", "model_contract": "core", "detections": "core",
    "postprocess": "core", "evaluation": "core", "shapes": "core", "shapes_video": "core", "tracking": "core",
    "visualization": "core", "label_exports": "core",
    "models": "models",
    "predictor": "predictor", "dataset_predictions": "predictor", "mrcnn": "predictor",
    "training": "training",
    "apps": "apps",
}


def _modules() -> dict[str, Path]:
    """Every module of the package, by dotted name, with its source file (packages as their __init__.py)."""
    modules = {PACKAGE: Path(object_detection_utils.__file__)}
    for info in pkgutil.walk_packages(object_detection_utils.__path__, prefix=f"{PACKAGE}."):
        modules[info.name] = Path(importlib.util.find_spec(info.name).origin)
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST):
    """Every import statement, at any depth (functions included), except those under `if TYPE_CHECKING:`."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            for statement in node.orelse:
                yield from _import_nodes(ast.Module([statement], []))
        else:
            yield from _import_nodes(node)


def _imported(module: str, is_package: bool, node: ast.Import | ast.ImportFrom, known: set[str]) -> set[str]:
    """The package's modules that `node` in `module` makes Python run: the named module and the packages on the
    way to it, except those that `module` sits in (they were imported before it)."""
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
    else:
        if node.level:
            base = module.split(".")
            base = base[: len(base) - node.level + (1 if is_package else 0)]
            origin = ".".join(base + ([node.module] if node.module else []))
        else:
            origin = node.module or ""
        # `from pkg import name` runs pkg.name too when that is a module
        targets = [origin, *(f"{origin}.{alias.name}" for alias in node.names)]
    enclosing = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
    found = set()
    for target in targets:
        parts = target.split(".")
        for i in range(1, len(parts) + 1):
            name = ".".join(parts[:i])
            if name in known and name not in enclosing:
                found.add(name)
    found.discard(module)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports at run time, top-level and inside functions alike."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        graph[name] = set().union(*(_imported(name, is_package, node, set(modules)) for node in _import_nodes(tree)))
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted, in sorted order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for neighbour in graph[node]:
            if neighbour not in index:
                visit(neighbour)
                low[node] = min(low[node], low[neighbour])
            elif neighbour in on_stack:
                low[node] = min(low[node], index[neighbour])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(components)


def test_the_graph_sees_top_level_function_level_and_relative_imports():
    graph = import_graph()
    assert {f"{PACKAGE}.models.catalogue", f"{PACKAGE}.models.dispatch", f"{PACKAGE}.errors"} <= (
        graph[f"{PACKAGE}.models.download"])
    assert f"{PACKAGE}.models.download" in graph[f"{PACKAGE}.models.zoo"]
    assert f"{PACKAGE}.models" not in graph[f"{PACKAGE}.models.zoo"]  # its own package ran before it


def test_cycles_are_found_through_function_level_imports():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"f"}, "f": {"e"}}
    assert cycles(graph) == [["a", "b", "c"], ["e", "f"]]
    tree = ast.parse("import os\ndef f():\n    from .b import x\nif TYPE_CHECKING:\n    from .c import y\n")
    known = {"p", "p.a", "p.b", "p.c"}
    found = set().union(*(_imported("p.a", False, node, known) for node in _import_nodes(tree)))
    assert found == {"p.b"}


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def layer(module: str) -> str:
    """The layer of a module of the package (AssertionError for one the table does not place)."""
    if module == PACKAGE:
        return "package"
    parts = module.removeprefix(f"{PACKAGE}.").split(".")
    for i in range(len(parts), 0, -1):
        found = LAYER_OF.get(".".join(parts[:i]))
        if found:
            return found
    raise AssertionError(f"{module} is in no layer: add it to LAYER_OF in tests/test_layers.py")


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """'a (layer) -> b (layer)' for each import of a module from a higher layer, sorted."""
    rank = {name: i for i, name in enumerate(LAYERS)}
    found = []
    for module, imported in graph.items():
        for target in imported:
            if rank[layer(target)] > rank[layer(module)]:
                found.append(f"{module} ({layer(module)}) -> {target} ({layer(target)})")
    return sorted(found)


def test_every_module_has_a_layer():
    for module in import_graph():
        assert layer(module) in LAYERS


def test_upward_imports_are_found():
    graph = {f"{PACKAGE}.io.images": {f"{PACKAGE}.errors"}, f"{PACKAGE}.masks": {f"{PACKAGE}.models.zoo"},
             f"{PACKAGE}.models.zoo": {f"{PACKAGE}.apps.cli", f"{PACKAGE}.masks"}, f"{PACKAGE}.errors": set()}
    assert upward_imports(graph) == [
        f"{PACKAGE}.masks (core) -> {PACKAGE}.models.zoo (models)",
        f"{PACKAGE}.models.zoo (models) -> {PACKAGE}.apps.cli (apps)",
    ]


def test_no_module_imports_from_a_higher_layer():
    found = upward_imports(import_graph())
    assert not found, "imports from a higher layer:\n" + "\n".join(found)


def test_root_scripts_only_call_a_command():
    """The scripts at the repository's root are shims: they import one command module of apps/ and nothing else of
    the package."""
    scripts = sorted(REPO.glob("instance_segmentation*.py"))
    assert len(scripts) >= 4
    for script in scripts:
        tree = ast.parse(script.read_text(encoding="utf-8"))
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        ours = {name for name in imported if name.split(".")[0] == PACKAGE}
        assert len(ours) == 1 and next(iter(ours)).startswith(f"{PACKAGE}.apps."), (script.name, ours)
