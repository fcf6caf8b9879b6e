"""Matterport's own Mask_RCNN code, fetched for the test run and never kept in this repository, run with only its
import lines changed (`mrcnn` -> `object_detection_utils.mrcnn`).

Where it comes from, first found first:
1. `MATTERPORT_MASK_RCNN`: a checkout of github.com/matterport/Mask_RCNN, or a bare git copy of it;
2. a git copy at `/work/.mirror/<owner>+Mask_RCNN` (how this workplace mirrors public repositories): matterport's
   own, else a fork of it (akTwelve's TF2 fork keeps `mrcnn/` and the samples' inference code as they are);
3. PyPI's `mrcnn==0.2` sdist (matterport's `mrcnn/*.py` of June 2018, uploaded unofficially; checked by its
   sha256), downloaded with pip: `mrcnn/` only, so the tests of the samples and the notebook skip.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import types
from dataclasses import dataclass
from pathlib import Path

ENV = "MATTERPORT_MASK_RCNN"
MIRRORS = Path("/work/.mirror")
PYPI_SDIST = "mrcnn==0.2"
PYPI_SHA256 = "195d3b32cb513f86a6f1c4b7350de319d0ef626264513018b9322c84047d6042"
# Modules matterport's samples import for training only, dropped when not installed (imgaug does not install
# beside numpy 2).
TRAINING_ONLY_IMPORTS = {"imgaug"}

# What the tests run besides mrcnn/: the demo notebook and the samples' inference code.
SAMPLE_FILES = ("samples/demo.ipynb", "samples/balloon/balloon.py", "samples/nucleus/nucleus.py",
                "samples/coco/coco.py")

_IMPORT_LINE = re.compile(r"^(\s*)(from|import)(\s+)mrcnn\b", re.MULTILINE)


@dataclass(frozen=True)
class MatterportCode:
    root: Path  # holds mrcnn/, and samples/ unless from PyPI
    origin: str

    @property
    def has_samples(self) -> bool:
        return (self.root / "samples" / "demo.ipynb").is_file()


def fetch(workdir: Path) -> MatterportCode | str:
    """Matterport's code under `workdir`, or why it cannot be had (one line)."""
    given = os.environ.get(ENV)
    if given:
        path = Path(given)
        if (path / "mrcnn").is_dir():
            return MatterportCode(path, f"{ENV}={path}")
        if (path / "HEAD").is_file():
            return _from_git(path, workdir)
        return f"{ENV}={path} is neither a checkout of matterport/Mask_RCNN nor a git copy of it"
    mirrors = sorted(MIRRORS.glob("*+Mask_RCNN"), key=lambda p: not p.name.startswith("matterport+")) \
        if MIRRORS.is_dir() else []
    mirrors = [git for mirror in mirrors for git in (mirror / "repo" / ".git", mirror) if (git / "HEAD").is_file()]
    for mirror in mirrors:
        found = _from_git(mirror, workdir)
        if isinstance(found, MatterportCode):
            return found
    return _from_pypi(workdir)


def _from_git(git_dir: Path, workdir: Path) -> MatterportCode | str:
    """The files the tests run, one by one (a mirror may lack the large blobs, pictures and GIFs, of other paths)."""
    target = workdir / "git"
    listed = subprocess.run(["git", f"--git-dir={git_dir}", "ls-tree", "-r", "--name-only", "HEAD"],
                            capture_output=True, text=True, timeout=120, check=False)
    if listed.returncode:
        return f"{git_dir}: git ls-tree failed: {listed.stderr.strip()}"
    wanted = [name for name in listed.stdout.splitlines()
              if (name.startswith("mrcnn/") and name.endswith(".py")) or name in SAMPLE_FILES]
    for name in wanted:
        blob = subprocess.run(["git", f"--git-dir={git_dir}", "show", f"HEAD:{name}"], capture_output=True,
                              timeout=120, check=False)
        if blob.returncode:
            return f"{git_dir}: cannot read {name}: {blob.stderr.decode(errors='replace').strip()}"
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_bytes(blob.stdout)
    if not (target / "mrcnn" / "model.py").is_file():
        return f"{git_dir}: no mrcnn/model.py: not matterport's Mask_RCNN"
    return MatterportCode(target, f"git copy {git_dir}")


def _from_pypi(workdir: Path) -> MatterportCode | str:
    download = workdir / "pypi"
    try:
        result = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                                 "--quiet", "--dest", str(download), PYPI_SDIST], capture_output=True, text=True,
                                timeout=180, check=False)
    except subprocess.TimeoutExpired:
        return f"matterport's code not available: pip download {PYPI_SDIST} timed out (no {ENV} checkout either)"
    archives = sorted(download.glob("mrcnn-*.tar.gz"))
    if result.returncode or not archives:
        reason = (result.stderr.strip().splitlines() or ["no archive"])[-1]
        return f"matterport's code not available: pip download {PYPI_SDIST} failed ({reason}); no {ENV} checkout"
    digest = hashlib.sha256(archives[0].read_bytes()).hexdigest()
    if digest != PYPI_SHA256:
        return f"{archives[0].name} has sha256 {digest}, not the {PYPI_SHA256} checked: not using it"
    with tarfile.open(archives[0]) as archive:
        archive.extractall(download, filter="data")
    return MatterportCode(download / "mrcnn-0.2", f"PyPI {PYPI_SDIST}")


def changed_imports(source: str) -> tuple[str, int]:
    """`source` with matterport's package imported from ours: the only change its code gets; and how many lines
    changed."""
    return _IMPORT_LINE.subn(r"\1\2\3object_detection_utils.mrcnn", source)


def load_script(path: Path, name: str) -> types.ModuleType:
    """A sample script run as a program, its import lines changed, without its command-line block (the last
    `if __name__ == "__main__":`, which parses arguments and calls train or detect; the test calls them instead)
    and without the training-only imports this environment lacks."""
    source, _ = changed_imports(path.read_text(encoding="utf-8"))
    tree = ast.parse(source, filename=str(path))
    main_blocks = [node for node in tree.body if _is_main_block(node)]
    body = [node for node in tree.body if node is not (main_blocks[-1] if main_blocks else None)
            and not _missing_training_import(node)]
    module = types.ModuleType(name)
    module.__file__ = str(path)
    module.__dict__["__name__"] = "__main__"
    exec(compile(ast.Module(body, type_ignores=[]), str(path), "exec"), module.__dict__)  # noqa: S102 (the point)
    module.__dict__["__name__"] = name
    return module


def notebook_cells(path: Path) -> list[str]:
    """The code cells of a notebook, import lines changed and IPython's `%` magics left out (they are no Python)."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    cells = []
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            source = "".join(cell["source"])
            source = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("%"))
            cells.append(changed_imports(source)[0])
    return cells


def _is_main_block(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "__name__" in ast.unparse(node.test) and "__main__" in ast.unparse(node.test)


def _missing_training_import(node: ast.stmt) -> bool:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module:
        names = [node.module]
    else:
        return False
    import importlib.util

    return any(name.split(".")[0] in TRAINING_ONLY_IMPORTS and importlib.util.find_spec(name.split(".")[0]) is None
               for name in names)
