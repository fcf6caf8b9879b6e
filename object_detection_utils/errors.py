"""Every exception the user sees as one line: the scripts print `error: <message>` and exit non-zero."""

from __future__ import annotations


def first_line(error: BaseException) -> str:
    """The first line of an exception's message, or its type's name when it has none: how an error from
    TensorFlow, Ray or another library is quoted in our one-line messages."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class InstanceSegmentationError(Exception):
    """Base class: anything the command-line scripts report as one line and a non-zero exit code."""


class ImageReadError(InstanceSegmentationError):
    """A file could not be read as a picture."""


class PictureTooLargeError(ImageReadError):
    """A picture declares more pixels than the reader's limit (a decompression bomb, or a scan too big to take)."""


class ModelLoadError(InstanceSegmentationError):
    """A path or name could not be turned into a runnable model."""


class MatterportConfigError(ModelLoadError, ValueError):
    """A matterport config is unknown, unreadable, or holds a value matterport's model cannot take."""


class DownloadError(ModelLoadError):
    """An archive could not be fetched or did not verify; the message says what to do."""


class NoConnection(DownloadError):
    """The server could not be reached at all (offline, wrong address, firewall)."""


class MrcnnUsageError(InstanceSegmentationError, ValueError):
    """Code written for matterport's `mrcnn` asked `object_detection_utils.mrcnn` for what matterport's would refuse
    too (a batch of another length than BATCH_SIZE) or what it does not do (training mode)."""


class PictureSizeError(InstanceSegmentationError, ValueError):
    """A picture of a size the model cannot take (matterport's IMAGE_RESIZE_MODE "none" off multiples of 64)."""


class LabelMapError(InstanceSegmentationError):
    """A label map file is missing or malformed, or a class name is unknown."""


class VideoSourceError(InstanceSegmentationError):
    """A camera, file or stream could not be opened or read."""


class StreamDroppedError(VideoSourceError):
    """A live source stopped delivering frames and did not come back after reconnecting."""


class VideoWriteError(InstanceSegmentationError):
    """An output video could not be written."""


class EvaluationError(InstanceSegmentationError):
    """Annotations or results that cannot be evaluated."""


class DatasetError(InstanceSegmentationError):
    """An annotations file or picture folder cannot be used for training."""


class TrackingInputError(InstanceSegmentationError, ValueError):
    """A counting line or zone that cannot be used: malformed, too few points, or outside the picture."""
