"""Exceptions that carry a one-line message meant for the user."""

from __future__ import annotations


class InstanceSegmentationError(Exception):
    """Base class: anything the command-line scripts report as one line and a non-zero exit."""


class ImageReadError(InstanceSegmentationError):
    """A file could not be read as a picture."""


class ModelLoadError(InstanceSegmentationError):
    """A path or name could not be turned into a runnable model."""


class LabelMapError(InstanceSegmentationError):
    """A label map file is missing or malformed, or a class name is unknown."""
