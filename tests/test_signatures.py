"""No function of the package takes more than 8 parameters: a run's options travel as one object (SegmenterSpec,
BatchOptions, PipelineOptions, VideoOptions), not as a long list. matterport's API (mrcnn/) keeps matterport's own
signatures, so that its users' code runs unchanged."""

from __future__ import annotations

import ast
from pathlib import Path

import object_detection_utils

PACKAGE = Path(object_detection_utils.__file__).parent
MOST_PARAMETERS = 8
KEPT_AS_MATTERPORT_HAS_THEM = "mrcnn"


def wide_functions(root: Path, most: int) -> list[str]:
    """'path:line name (N parameters)' for each function with more than `most` parameters (self and cls not
    counted), sorted."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                arguments = node.args
                names = [a.arg for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)]
                count = len([n for n in names if n not in ("self", "cls")]) + bool(arguments.vararg) + bool(
                    arguments.kwarg)
                if count > most:
                    found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({count} parameters)")
    return found


def test_wide_functions_are_found(tmp_path):
    (tmp_path / "a.py").write_text("def f(a, b, c, *d, e, **f): pass\nclass C:\n    def g(self, a, b): pass\n")
    assert wide_functions(tmp_path, 5) == ["a.py:1 f (6 parameters)"]
    assert wide_functions(tmp_path, 6) == []


def test_no_function_takes_more_than_eight_parameters():
    found = [line for line in wide_functions(PACKAGE, MOST_PARAMETERS)
             if not line.startswith(f"{KEPT_AS_MATTERPORT_HAS_THEM}/")]
    assert not found, "too many parameters (pass an options object):\n" + "\n".join(found)
