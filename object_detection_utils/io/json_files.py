"""Reading a JSON file that another tool wrote, with one-line errors naming the file and where it broke."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InstanceSegmentationError


def read_json(path: str | Path, error: type[InstanceSegmentationError] = InstanceSegmentationError,
              what: str = "JSON") -> Any:
    """The document in `path`; `error` (e.g. DatasetError) with one line for a missing, unreadable or invalid file."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: no such {what} file") from None
    except (OSError, UnicodeDecodeError) as problem:
        raise error(f"{path}: cannot be read ({problem})") from None
    except json.JSONDecodeError as problem:
        raise error(f"{path}: line {problem.lineno}: not valid JSON ({problem.msg})") from None
