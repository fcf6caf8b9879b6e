"""A model's input size, from the files beside it: what `--tile auto` cuts pictures to.

Our exports resize every picture to a fixed square (`training_options.json`'s `input_size`); the TF zoo's
`pipeline.config` names a fixed shape or the shorter side pictures are resized to. Nothing is loaded.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

_RESIZER_SIDES = (
    re.compile(r"fixed_shape_resizer\s*\{[^}]*?height:\s*(\d+)"),
    re.compile(r"keep_aspect_ratio_resizer\s*\{[^}]*?min_dimension:\s*(\d+)"),
)


def model_input_size(source: str | Path) -> int | None:
    """The side in pixels the model resizes pictures to, or None when its files do not say."""
    folder = Path(source)
    folder = folder if folder.is_dir() else folder.parent
    for candidate in (folder, folder.parent):
        options = candidate / "training_options.json"
        if options.is_file():
            try:
                return int(json.loads(options.read_text())["input_size"])
            except (OSError, ValueError, KeyError, TypeError):
                return None
        config = candidate / "pipeline.config"
        if config.is_file():
            try:
                text = config.read_text()
            except OSError:
                return None
            for pattern in _RESIZER_SIDES:
                found = pattern.search(text)
                if found:
                    return int(found.group(1))
            return None
    return None
