"""The config class of a matterport training script, read with `ast` (the script is never run): literals, names
assigned earlier, arithmetic and `np.array([...])`, through the class's bases in the same file.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Mapping, Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import MatterportConfigError

_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}


class _NotLiteral(Exception):
    """An expression that cannot be evaluated without running the script."""


@dataclass(frozen=True)
class _Unread:
    """A class setting whose value is an expression we do not evaluate."""

    line: int
    expression: str


def _evaluate(node: ast.expr, names: Mapping[str, Any]) -> Any:
    """Literals, names of earlier assignments, arithmetic and `np.array([...])`; anything else is _NotLiteral."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.Tuple, ast.List)):
        return [_evaluate(item, names) for item in node.elts]
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {_evaluate(k, names): _evaluate(v, names) for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand, names))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        try:
            return _BINARY[type(node.op)](_evaluate(node.left, names), _evaluate(node.right, names))
        except (TypeError, ArithmeticError):
            raise _NotLiteral from None
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("array", "asarray")
            and isinstance(node.func.value, ast.Name) and node.func.value.id in ("np", "numpy")
            and len(node.args) == 1 and not node.keywords):
        return _evaluate(node.args[0], names)
    raise _NotLiteral


def _base_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def read_script_config(text: str, path: Path, ignored_keys: Set[str] = frozenset()) -> dict[str, Any]:
    """The settings of the script's matterport config class: the one whose name says "Inference" if any, else the
    most derived; its base classes in the same file supply what it does not set. A setting that cannot be read
    without running the script is a MatterportConfigError naming its line, unless it is one of `ignored_keys`
    (then it is left out)."""
    try:
        tree = ast.parse(text, filename=str(path))
    except SyntaxError as error:
        raise MatterportConfigError(f"{path}: not valid Python (line {error.lineno}): {error.msg}") from None
    config_roots = {"Config"} | {
        alias.asname for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
        for alias in node.names if alias.name == "Config" and alias.asname
    }
    module_names = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            try:
                value = _evaluate(node.value, module_names)
            except _NotLiteral:
                continue
            module_names.update({t.id: value for t in node.targets if isinstance(t, ast.Name)})
    classes = {node.name: node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}

    def depth(name: str, seen: frozenset = frozenset()) -> int | None:
        """Inheritance steps from matterport's Config, or None for a class that is no config."""
        node = classes.get(name)
        if node is None or name in seen:
            return None
        depths = []
        for base in map(_base_name, node.bases):
            if base in config_roots and base not in classes:
                depths.append(1)
            elif base in classes and (inner := depth(base, seen | {name})) is not None:
                depths.append(inner + 1)
        return max(depths) if depths else None

    configs = {name: d for name in classes if (d := depth(name)) is not None}
    if not configs:
        raise MatterportConfigError(f"{path}: no matterport Config subclass found")
    bases_in_use = {_base_name(b) for name in configs for b in classes[name].bases}
    leaves = [name for name in configs if name not in bases_in_use] or list(configs)
    inference = [name for name in leaves if "inference" in name.lower()]
    order = list(classes)
    chosen = max(inference or leaves, key=lambda name: (configs[name], order.index(name)))

    def settings(name: str) -> dict[str, Any]:
        """UPPER_CASE settings of a class with its in-file bases' (first base wins), _Unread where not literal."""
        merged: dict[str, Any] = {}
        for base in reversed([_base_name(b) for b in classes[name].bases]):
            if base in configs:
                merged.update(settings(base))
        local: dict[str, Any] = {}
        for statement in classes[name].body:
            if isinstance(statement, ast.Assign):
                targets, value = statement.targets, statement.value
            elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
                targets, value = [statement.target], statement.value
            else:
                continue
            try:
                result = _evaluate(value, {**module_names, **local})
            except _NotLiteral:
                result = _Unread(statement.lineno, ast.unparse(value))
            for target in targets:
                if isinstance(target, ast.Name):
                    if not isinstance(result, _Unread):
                        local[target.id] = result
                    if target.id.isupper():
                        merged[target.id] = result
        return merged

    mapping = {}
    for key, value in settings(chosen).items():
        if isinstance(value, _Unread):
            if key in ignored_keys:
                continue
            raise MatterportConfigError(f"{path}: line {value.line}: {key} = {value.expression} cannot be read without "
                                        "running the script; write the value as a literal")
        mapping[key] = value
    return mapping
