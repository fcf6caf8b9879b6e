#!/usr/bin/env python3
"""Load test of the server on loopback against the bare Segmenter in-process, on the same pictures.

    python benchmarks/serve_load.py --model ../shared/models/shapes-r18-128 --seconds 60

1. The bare `Segmenter` in this process: decoded pictures in, Detections out, for --seconds.
2. The server (instance_segmentation_server.py, a child process) under 1, 4 and 16 concurrent clients for --seconds
   each (bounded also by --max-requests), each client posting the pictures' files to /v1/segment in turn.
Prints requests/s and its ratio to the bare Segmenter, p50/p95/p99 latency, errors, the server's peak RSS during
each level, and the bytes of one answer in each mask format against TF Serving's :predict answer.
"""

from __future__ import annotations

import argparse
import base64
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from object_detection_utils import SegmenterSpec, read_image
from object_detection_utils.io.images import IMAGE_SUFFIXES

DEFAULT_MODEL = ROOT.parent / "shared" / "models" / "shapes-r18-128"


def pictures_of(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def bare_segmenter(model: str, paths: list[Path], seconds: float) -> float:
    """Pictures per second through `Segmenter.segment`, decoded beforehand, one after another."""
    segmenter = SegmenterSpec(model).load()
    images = [read_image(p) for p in paths]
    for image in images:
        segmenter.segment(image)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        segmenter.segment(images[done % len(images)])
        done += 1
    return done / (time.perf_counter() - start)


class RssSampler(threading.Thread):
    """The peak resident memory of a process, sampled from /proc every 0.2 s until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.2):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    self.peak = max(self.peak, int(line.split()[1]) * 1024)


def load_level(url: str, files: list[bytes], clients: int, seconds: float, max_requests: int) -> dict:
    """`clients` threads posting pictures for `seconds` (and at most `max_requests` in all)."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client(offset: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            i = offset
            while time.perf_counter() < deadline:
                with lock:
                    if len(latencies) + errors[0] >= max_requests:
                        return
                start = time.perf_counter()
                try:
                    ok = http.post("/v1/segment", content=files[i % len(files)]).status_code == 200
                except httpx.HTTPError:
                    ok = False
                with lock:
                    if ok:
                        latencies.append(time.perf_counter() - start)
                    else:
                        errors[0] += 1
                i += 1

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [latencies[0]] * 99
    return {"clients": clients, "requests": len(latencies), "rps": len(latencies) / elapsed, "p50": cuts[49],
            "p95": cuts[94], "p99": cuts[98], "errors": errors[0]}


def answer_sizes(url: str, name: str, data: bytes) -> dict[str, int]:
    sizes = {f"/v1/segment {fmt}": len(httpx.post(f"{url}/v1/segment?mask_format={fmt}", content=data).content)
             for fmt in ("rle", "polygons", "png")}
    request = {"instances": [{"b64": base64.b64encode(data).decode()}]}
    sizes["TF Serving :predict (box-relative masks)"] = len(
        httpx.post(f"{url}/v1/models/{name}:predict", content=json.dumps(request), timeout=60).content)
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--pictures", type=Path, default=None, help="folder of pictures (default: the model's examples/)")
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds per level and for the bare run")
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--max-requests", type=int, default=100_000, help="most requests per level")
    args = parser.parse_args()
    paths = pictures_of(args.pictures or Path(args.model) / "examples")
    files = [p.read_bytes() for p in paths]

    bare = bare_segmenter(args.model, paths, args.seconds)
    print(f"bare Segmenter in-process: {bare:.2f} pictures/s on {len(paths)} pictures", flush=True)

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, str(ROOT / "instance_segmentation_server.py"), "--model", args.model,
                               "--port", str(port), "--queue-size", "64"], stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                ready = httpx.get(f"{url}/readyz")
                if ready.status_code == 200:
                    name = ready.json()["model"]
                    break
            except httpx.TransportError:
                if server.poll() is not None:
                    raise SystemExit(f"the server did not start: {server.stderr.read()}") from None
                time.sleep(0.2)
        rows = []
        for clients in (int(c) for c in args.clients.split(",")):
            sampler = RssSampler(server.pid)
            sampler.start()
            row = load_level(url, files, clients, args.seconds, args.max_requests)
            sampler.stop.set()
            sampler.join()
            row["rss"] = sampler.peak / 2**20
            rows.append(row)
            print(row, flush=True)
        sizes = answer_sizes(url, name, files[0])
    finally:
        server.terminate()
        server.wait(60)

    print(f"\nmodel {name}, {len(paths)} pictures, {args.seconds:g} s per level; bare Segmenter {bare:.2f} pictures/s\n")
    print("| clients | requests | requests/s | vs bare | p50 ms | p95 ms | p99 ms | errors | server peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['clients']} | {r['requests']} | {r['rps']:.2f} | {r['rps'] / bare:.2f}x | {r['p50'] * 1000:.0f} "
              f"| {r['p95'] * 1000:.0f} | {r['p99'] * 1000:.0f} | {r['errors']} | {r['rss']:.0f} |")
    print(f"\n| answer for {paths[0].name} | bytes |\n|---|---|")
    for label, size in sizes.items():
        print(f"| {label} | {size} |")


if __name__ == "__main__":
    main()
