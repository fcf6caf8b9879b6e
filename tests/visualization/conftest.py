"""Fixtures for tests with real windows: a fresh Xvfb server and xdotool (each skips when not installed)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from real_display import xdotool_path, xvfb_server


@pytest.fixture
def xvfb_display(tmp_path) -> Iterator[str]:
    """The display name of a fresh Xvfb server, stopped after the test."""
    with xvfb_server(tmp_path / "xvfb.log") as name:
        yield name


@pytest.fixture
def xdotool() -> str:
    return xdotool_path()
