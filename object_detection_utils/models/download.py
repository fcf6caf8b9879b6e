"""Fetching a zoo archive into the models folder: locked, resumable, verified, unpacked safely, renamed into place.

Everything in flight lives in `<models dir>/.downloads/`:

    <archive>.part     the download so far (resumed with an HTTP Range request when the server allows it)
    <name>.lock        held while one process fetches <name>; a second one waits, then finds the model there
    <archive>.sha256   the digest of the archive as first downloaded ("<hex>  <archive>", as sha256sum writes)

The model is unpacked into a temporary folder beside `<models dir>/<name>/` (`atomic_directory`) and renamed
to it only once complete, so a model folder that exists is always whole, and a later run finds it without any
network access.
"""

from __future__ import annotations

import hashlib
import http.client
import re
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from ..errors import DownloadError, ModelLoadError, NoConnection
from ..io.atomic import TEMP_SUFFIX, atomic_directory, is_temp_name, write_bytes_atomic
from ..io.locks import file_lock
from .archive import extract_archive
from .catalogue import ZooModel
from .dispatch import is_model_folder

CHUNK_BYTES = 1 << 20
TIMEOUT_SECONDS = 30
USER_AGENT = "instance-segmentation (python urllib)"


def fetch_model(model: ZooModel, models_dir: Path, progress: bool = True) -> Path:
    """Download, verify and unpack `model` into `<models_dir>/<name>/` unless it is there; return that folder."""
    target = models_dir / model.name
    if is_model_folder(target):
        return target
    try:
        with file_lock(models_dir / ".downloads" / f"{model.name}.lock",
                       waiting=f"waiting for another process fetching {model.name}"):
            if not is_model_folder(target):  # else another process finished it while we waited
                _fetch_unlocked(model, target, progress)
    except OSError as error:  # the models folder is not writable, the disk is full, ...
        raise DownloadError(f"{models_dir}: cannot store {model.name}: {error}") from None
    return target


def _fetch_unlocked(model: ZooModel, target: Path, progress: bool) -> None:
    work = target.parent / ".downloads"
    part = work / f"{model.archive_name}.part"
    digest_file = work / f"{model.archive_name}.sha256"
    try:
        download(model.url, part, desc=model.name, progress=progress)
    except NoConnection as error:
        raise NoConnection(f"{error}, offline? {manual_hint(model, target.parent)}") from None
    digest = sha256_file(part)
    expected = model.sha256 or read_digest(digest_file)
    if expected is not None and digest != expected.lower():
        part.unlink()
        if model.sha256:
            origin = "the catalogue's; run again to download it again"
        else:
            origin = (f"recorded at the first download; delete {digest_file} if the archive really changed "
                      "upstream")
        raise DownloadError(f"{model.url}: checksum mismatch: got sha256 {digest}, expected {expected} "
                            f"({origin}); the bad file was removed")
    try:
        unpack_model(part, target)
    except ModelLoadError:
        part.unlink()
        raise
    if expected is None:
        write_bytes_atomic(digest_file, f"{digest}  {model.archive_name}\n".encode())
    part.unlink()


def download(url: str, part: Path, desc: str = "", progress: bool = True) -> None:
    """Fetch `url` into `part`, resuming what an earlier, interrupted run left there.

    A server that answers the Range request with 206 continues the file; one that sends the whole file again
    (200) or refuses the range (416) restarts it. Raises DownloadError (the partial file kept) on failure.
    """
    part.parent.mkdir(parents=True, exist_ok=True)
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT, **({"Range": f"bytes={offset}-"} if offset else {})}
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_SECONDS)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:
            if error.headers.get("Content-Range") == f"bytes */{offset}":  # the last run got it all
                return None
            part.unlink()  # our partial file is no prefix of what the server has: start over
            return download(url, part, desc, progress)
        raise DownloadError(f"{url}: server answered {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise NoConnection(f"{url}: cannot connect ({reason})") from None
    with response:
        if response.status != 206 or not _continues_at(response.headers.get("Content-Range"), offset):
            offset = 0  # the server sends the whole file
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        received = offset
        with open(part, "ab" if offset else "wb") as file, tqdm(
            total=total, initial=offset, desc=desc or part.name, unit="B", unit_scale=True,
            disable=not progress, file=sys.stderr, leave=True,
        ) as bar:
            try:
                while chunk := response.read(CHUNK_BYTES):
                    file.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            except (http.client.HTTPException, OSError) as error:
                raise DownloadError(
                    f"{url}: download interrupted at {received} of {total or '?'} bytes "
                    f"({type(error).__name__}); run again to resume"
                ) from None
    if total is not None and received != total:
        raise DownloadError(f"{url}: download interrupted at {received} of {total} bytes; run again to resume")


def _continues_at(content_range: str | None, offset: int) -> bool:
    match = re.match(r"bytes (\d+)-", content_range or "")
    return match is not None and int(match.group(1)) == offset


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def read_digest(path: Path) -> str | None:
    """The hex digest in a sha256sum-style file, or None if there is no such file."""
    try:
        return path.read_text().split()[0].lower()
    except (FileNotFoundError, IndexError):
        return None


def unpack_model(archive: Path, target: Path) -> Path:
    """Extract a zoo archive (`<name>/frozen_inference_graph.pb` ...) so that it becomes the folder `target`."""
    _remove_killed_unpacking(target)
    with atomic_directory(target) as staging:
        # a random name, so that no member of the archive can be called the same
        unpacked = extract_archive(archive, Path(tempfile.mkdtemp(dir=staging)) / "archive")
        entries = [p for p in unpacked.iterdir() if not p.name.startswith(".")]
        model_root = entries[0] if len(entries) == 1 and entries[0].is_dir() else unpacked
        if not is_model_folder(model_root):
            raise ModelLoadError(f"{archive}: the archive holds no detection model (no frozen graph or SavedModel)")
        for entry in list(model_root.iterdir()):
            entry.rename(staging / entry.name)
        shutil.rmtree(unpacked.parent)
    return target


def _remove_killed_unpacking(target: Path) -> None:
    """Delete the temporary folders a killed unpacking of `target` left beside it (the caller holds its lock)."""
    for path in target.parent.glob(f".*{TEMP_SUFFIX}"):
        if is_temp_name(path.name) and path.name[1:].rsplit(".", 2)[0] == target.name:
            shutil.rmtree(path, ignore_errors=True)


def manual_hint(model: ZooModel, models_dir: Path) -> str:
    """The one line that tells a user without network where to put the model by hand."""
    return (f"to install {model.name} by hand: fetch {model.url} on a connected machine and put the archive, "
            f"or the folder it unpacks to, into {models_dir}/")
