"""Where downloaded and unpacked models live on disk."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "INSTANCE_SEGMENTATION_CACHE"
MODELS_DIR_ENV = "INSTANCE_SEGMENTATION_MODELS_DIR"


def cache_dir() -> Path:
    """`$INSTANCE_SEGMENTATION_CACHE`, else the platform's user cache folder + `instance-segmentation`."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    if os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif os.uname().sysname == "Darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "instance-segmentation"


def default_models_dir() -> Path:
    """`$INSTANCE_SEGMENTATION_MODELS_DIR`, else `<cache_dir>/models`: where zoo models are looked up by name."""
    if os.environ.get(MODELS_DIR_ENV):
        return Path(os.environ[MODELS_DIR_ENV]).expanduser()
    return cache_dir() / "models"
