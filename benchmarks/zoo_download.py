#!/usr/bin/env python3
"""What fetching a zoo model costs beyond the bare download, and that it streams (memory stays flat).

Serves a zoo-sized archive (`<name>/frozen_inference_graph.pb` of incompressible bytes) from http.server on
127.0.0.1 and measures, side by side in one run:

  baseline   urllib copy of the archive to a file (the network part alone)
  fetch      download.fetch_model: locked download with progress bar, SHA-256, safe extraction, rename

and prints their ratio, plus the peak RSS growth during fetch, which must stay far below the archive size.

    nice -n 10 python benchmarks/zoo_download.py --megabytes 200
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import shutil
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from object_detection_utils.models import catalogue, zoo  # noqa: E402
from object_detection_utils.models.download import fetch_model  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def build_archive(folder: Path, name: str, megabytes: int) -> Path:
    model = folder / "src" / name
    model.mkdir(parents=True)
    with open(model / "frozen_inference_graph.pb", "wb") as file:
        for _ in range(megabytes):
            file.write(os.urandom(1 << 20))
    archive = folder / "www" / f"{name}.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        tar.add(model, arcname=name)
    shutil.rmtree(folder / "src")
    return archive


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megabytes", type=int, default=200, help="size of the model inside the archive")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    entry = catalogue.CATALOGUE[zoo.DEFAULT_MODEL]
    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as tmp:
        folder = Path(tmp)
        archive = build_archive(folder, entry.name, args.megabytes)
        size_mb = archive.stat().st_size / 1e6
        handler = functools.partial(QuietHandler, directory=str(archive.parent))
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        os.environ[catalogue.ZOO_URL_ENV] = f"http://127.0.0.1:{httpd.server_address[1]}"

        baseline, fetch = [], []
        rss_before = peak_rss_mb()
        for repeat in range(args.repeats):
            copy = folder / f"copy-{repeat}.tar.gz"
            start = time.perf_counter()
            with urllib.request.urlopen(entry.url) as response, open(copy, "wb") as file:
                shutil.copyfileobj(response, file, 1 << 20)
            baseline.append(time.perf_counter() - start)
            copy.unlink()

            models_dir = folder / f"models-{repeat}"
            start = time.perf_counter()
            fetch_model(entry, models_dir, progress=False)
            fetch.append(time.perf_counter() - start)
            shutil.rmtree(models_dir)
        rss_growth = peak_rss_mb() - rss_before
        httpd.shutdown()

    best_baseline, best_fetch = min(baseline), min(fetch)
    print(f"archive: {size_mb:.1f} MB (model {args.megabytes} MB), best of {args.repeats}")
    print(f"baseline urllib copy : {best_baseline:.3f} s ({size_mb / best_baseline:.0f} MB/s)")
    print(f"fetch_model          : {best_fetch:.3f} s ({size_mb / best_fetch:.0f} MB/s)")
    print(f"fetch / baseline     : {best_fetch / best_baseline:.2f}x "
          "(the extra is SHA-256, gunzip + extraction, done after the download)")
    print(f"peak RSS growth      : {rss_growth:.1f} MB for a {size_mb:.0f} MB archive")


if __name__ == "__main__":
    main()
