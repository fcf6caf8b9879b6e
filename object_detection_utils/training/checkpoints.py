"""Model Garden checkpoints to start training from: a catalogue of the published ones that fit our
configurations, and fetching one (by name or URL) once into the cache with the zoo's download.

A checkpoint is published either as a `.tar.gz` of a folder holding `ckpt-N.index` and `ckpt-N.data-*`, or as
those files side by side. Each file goes through the same locked, resumable, digest-recorded download as zoo
models (models/download.py); the checkpoint is then assembled, atomically, into `<cache>/checkpoints/<name>/`,
where a later run finds it without any network access.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from ..errors import DownloadError, ModelLoadError, NoConnection
from ..io.atomic import atomic_directory, write_bytes_atomic
from ..io.locks import file_lock
from ..models.archive import ARCHIVE_SUFFIXES, extract_archive
from ..models.cache import cache_dir
from ..models.download import download, read_digest, sha256_file

CHECKPOINTS_DIR_ENV = "INSTANCE_SEGMENTATION_CHECKPOINTS_DIR"
STORAGE_URL = "https://storage.googleapis.com"  # where Model Garden publishes its checkpoints
STORAGE_URL_ENV = "INSTANCE_SEGMENTATION_CHECKPOINT_URL"  # a mirror of STORAGE_URL's tree (tests use a local server)


@dataclass(frozen=True)
class CatalogueCheckpoint:
    """A published Model Garden checkpoint whose backbone fits ours (Model Garden's `resnet` backbone).

    `paths` are under STORAGE_URL: one `.tar.gz`, or a checkpoint's `.index` and `.data-*` files. Only the
    backbone is restored from these: Model Garden publishes no COCO Mask R-CNN ResNet-FPN checkpoint (its
    MODEL_GARDEN.md lists that model with a config only), and a RetinaNet's heads are not a Mask R-CNN's.
    """

    name: str
    paths: tuple[str, ...]
    what: str
    backbone: str
    trained_at: int  # the input size it was trained at; a backbone fits any input size
    sha256: str | None = None  # of the archive, when one is published (none are: the first download's is recorded)

    @property
    def urls(self) -> list[str]:
        base = os.environ.get(STORAGE_URL_ENV) or STORAGE_URL
        return [f"{base.rstrip('/')}/{path}" for path in self.paths]


# From tensorflow/models: official/vision/configs/maskrcnn.py (the ImageNet init checkpoint of
# maskrcnn_resnetfpn_coco) and official/vision/MODEL_GARDEN.md (RetinaNet R50-FPN, 640x640, 72 epochs, box AP 36.8).
CATALOGUE: dict[str, CatalogueCheckpoint] = {entry.name: entry for entry in (
    CatalogueCheckpoint(
        "resnet50-imagenet",
        ("cloud-tpu-checkpoints/vision-2.0/resnet50_imagenet/ckpt-28080.index",
         "cloud-tpu-checkpoints/vision-2.0/resnet50_imagenet/ckpt-28080.data-00000-of-00001"),
        "Model Garden's ImageNet ResNet-50, 224 px, top-1 76.1%", "resnet50", 224),
    CatalogueCheckpoint(
        "retinanet-resnet50fpn-coco",
        ("tf_model_garden/vision/retinanet/retinanet-resnet50fpn.tar.gz",),
        "Model Garden's COCO RetinaNet ResNet50-FPN, 640 px, box AP 36.8: its backbone", "resnet50", 640),
)}


def catalogued_checkpoint(name: str) -> CatalogueCheckpoint | None:
    return CATALOGUE.get(name)


def is_url(spec: str) -> bool:
    return urlparse(spec).scheme in ("http", "https")


def checkpoints_dir() -> Path:
    """`$INSTANCE_SEGMENTATION_CHECKPOINTS_DIR`, else `<cache>/checkpoints`."""
    configured = os.environ.get(CHECKPOINTS_DIR_ENV)
    return Path(configured).expanduser() if configured else cache_dir() / "checkpoints"


def fetch_checkpoint(spec: str, folder: Path | None = None, progress: bool = True) -> Path:
    """The local folder of a catalogue name or a checkpoint URL (a `.tar.gz`, or a checkpoint prefix whose
    `.index` and `.data-00000-of-00001` files are fetched), downloading it unless it is in `folder` (default:
    checkpoints_dir())."""
    entry = catalogued_checkpoint(spec)
    urls = entry.urls if entry is not None else _urls_of(spec)
    name = entry.name if entry is not None else _name_of(urls[0])
    folder = folder or checkpoints_dir()
    target = folder / name
    if not _holds_checkpoint(target):
        try:
            with file_lock(folder / ".downloads" / f"{name}.lock",
                           waiting=f"waiting for another process fetching {name}"):
                if not _holds_checkpoint(target):
                    _fetch_unlocked(urls, name, target, entry.sha256 if entry else None, progress)
        except NoConnection as error:
            what = "the files it unpacks to" if len(urls) == 1 else "them"
            raise NoConnection(f"{error}; offline? fetch {' and '.join(urls)} on a connected machine and put {what} "
                               f"into {target}/") from None
        except OSError as error:
            raise DownloadError(f"{folder}: cannot store {name}: {error}") from None
    return target


def _urls_of(url: str) -> list[str]:
    path = urlparse(url).path
    if any(path.lower().endswith(suffix) for suffix in ARCHIVE_SUFFIXES):
        return [url]
    prefix = url.removesuffix(".index")
    return [f"{prefix}.index", f"{prefix}.data-00000-of-00001"]


def _name_of(url: str) -> str:
    """The cache folder name of a checkpoint URL: the archive's stem, or the prefix's folder and file names."""
    path = Path(urlparse(url).path)
    for suffix in ARCHIVE_SUFFIXES:
        if path.name.lower().endswith(suffix):
            return path.name[: -len(suffix)]
    return f"{path.parent.name}-{path.name.removesuffix('.index')}".strip("-")


def is_cached(name: str, folder: Path | None = None) -> bool:
    """Whether the checkpoint called `name` (a catalogue name, or a URL's archive stem) is in the cache."""
    return _holds_checkpoint((folder or checkpoints_dir()) / name)


def _holds_checkpoint(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("*.index"))


def _fetch_unlocked(urls: list[str], name: str, target: Path, sha256: str | None, progress: bool) -> None:
    """Download every file of the checkpoint (each verified against the digest recorded at its first download),
    then put them together as `target`."""
    work = target.parent / ".downloads"
    parts = []
    for url in urls:
        file_name = Path(urlparse(url).path).name
        part = work / f"{name}--{file_name}.part"
        digest_file = work / f"{name}--{file_name}.sha256"
        download(url, part, desc=f"{name}: {file_name}", progress=progress)
        digest = sha256_file(part)
        expected = (sha256 if len(urls) == 1 else None) or read_digest(digest_file)
        if expected is not None and digest != expected.lower():
            part.unlink()
            raise DownloadError(f"{url}: checksum mismatch: got sha256 {digest}, expected {expected}; the bad file "
                                f"was removed" + ("" if sha256 else f" (delete {digest_file} if it really changed "
                                                                   "upstream)"))
        if expected is None:
            write_bytes_atomic(digest_file, f"{digest}  {file_name}\n".encode())
        parts.append((part, file_name))
    try:
        with atomic_directory(target) as staging:
            if len(parts) == 1 and parts[0][1].lower().endswith(ARCHIVE_SUFFIXES):
                _unpack_checkpoint(parts[0][0], staging)
            else:
                for part, file_name in parts:
                    shutil.copyfile(part, staging / file_name)
    except ModelLoadError:
        for part, _ in parts:
            part.unlink()
        raise
    for part, _ in parts:
        part.unlink()


def _unpack_checkpoint(archive: Path, staging: Path) -> None:
    """Extract a checkpoint archive and move the folder holding its `.index` file's contents into `staging`."""
    unpacked = extract_archive(archive, Path(tempfile.mkdtemp(dir=staging)) / "archive")
    indexes = sorted(unpacked.rglob("*.index"))
    if not indexes:
        raise ModelLoadError(f"{archive}: the archive holds no TensorFlow checkpoint (no .index file)")
    for entry in list(indexes[0].parent.iterdir()):
        entry.rename(staging / entry.name)
    shutil.rmtree(unpacked.parent)
