#!/usr/bin/env python3
"""The batch job on Ray Data against the local pipeline, side by side in one run on the same pictures and model,
each variant in its own process:

  local  run_batch: reader threads, the model on the main thread, writer threads
  ray    run_ray_batch on a local Ray instance started by the variant's process (all this machine's CPUs):
         decode tasks, one model actor, write tasks

Both write the overlays, the journal and the run's COCO JSON. Prints pictures/s of each (the pipeline's time,
model load excluded, as the summary line counts it; and the wall time from start to end, Ray start included),
the ratio ray / local, and peak RSS: the local process; Ray's driver, its model actor(s) and its task workers
(each process's high-water mark, VmHWM, sampled while it lives).

With --two-nodes it also starts a two-node Ray cluster on this machine (`ray start --head` and a second
`ray start --address`, two logical CPUs each (one for the model actor, one for decoding and writing), stopped by process id at the end) and runs the job on it with one model actor
per node, counting the pictures each node's actor ran: the job spreads over the nodes.

    python benchmarks/ray_throughput.py                          # costly random-weight model, 80 COCO pictures
    python benchmarks/ray_throughput.py --model ../shared/models/shapes-r18-128 --rounds 2
    python benchmarks/ray_throughput.py --two-nodes --variants ray --limit 40
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]
from object_detection_utils import Segmenter  # noqa: E402 (after the path set-up)
from object_detection_utils.predictor import SegmenterSpec  # noqa: E402

DEFAULT_PICTURES = REPO.parent / "shared" / "data" / "coco" / "val2017"
VARIANTS = ("local", "ray")


def resolve_model(spec: str) -> Path:
    if spec == "costly":
        from costly_model import costly_model_dir

        return costly_model_dir()
    return Path(spec)


class PeakMemory:
    """The peak RSS (VmHWM) of every process below this one whose title starts with `ray::`, sampled until
    `stop` (Ray's workers are the grandchildren of a local driver; on a cluster started apart, `everyone`
    samples every `ray::` process of the machine)."""

    def __init__(self, everyone: bool = False) -> None:
        self.peaks: dict[int, tuple[str, float]] = {}
        self._everyone = everyone
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(0.25):
            self.sample()

    def sample(self) -> None:
        mine = os.getpid()
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                title = (proc / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
                if not title.startswith("ray::") or not (self._everyone or _descends_from(int(proc.name), mine)):
                    continue
                status = (proc / "status").read_text()
            except OSError:
                continue
            hwm = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
            title = title.split(" ")[0]
            kind = "model actor" if "MapWorker" in title else "task worker"
            previous = self.peaks.get(int(proc.name), (kind, 0.0))
            self.peaks[int(proc.name)] = (kind if kind == "model actor" else previous[0], max(previous[1], hwm / 1024))

    def stop(self) -> dict[str, list[float]]:
        self._done.set()
        self._thread.join()
        by_kind: dict[str, list[float]] = {}
        for kind, peak in self.peaks.values():
            by_kind.setdefault(kind, []).append(round(peak))
        return {kind: sorted(peaks, reverse=True) for kind, peaks in by_kind.items()}


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat[stat.rindex(")") + 2:].split()[1])
    return False


# ------------------------------------------------------------------------------------------ one variant


def run_variant(variant: str, model_path: Path, folder: Path, limit: int | None, address: str | None) -> dict:
    from object_detection_utils import load_model
    from object_detection_utils.apps.batch import BatchOptions, PipelineOptions, find_pictures, run_batch

    pictures = find_pictures([folder])[:limit]
    wall_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        options = BatchOptions(output_dir=Path(out), coco_json=Path(out) / "results.json")
        result: dict = {"variant": variant, "pictures": len(pictures)}
        if variant == "local":
            report = run_batch(Segmenter(load_model(model_path)), pictures, options, PipelineOptions(progress=False))
        else:
            from object_detection_utils.apps.batch.ray_cluster import connect
            from object_detection_utils.apps.batch.ray_job import run_ray_batch

            memory = PeakMemory(everyone=address is not None)
            connect(address)
            if address is not None:
                _wait_for_nodes(2)
            tally = Path(out) / ".tally"
            tally.mkdir()
            report = run_ray_batch(CountingSpec(str(model_path), tally=str(tally)), pictures, options,
                                   progress=False, log=lambda line: None)
            memory.sample()
            result["workers_peak_rss_mb"] = memory.stop()
            result["pictures_per_node"] = _per_node(tally)
        if report.done != len(pictures):
            raise SystemExit(f"{variant} did {report.done} of {len(pictures)} pictures: {report.failures[:3]}")
    wall = time.perf_counter() - wall_start
    return {**result, "seconds": report.seconds, "pictures_per_second": report.done / report.seconds,
            "wall_pictures_per_second": report.done / wall,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _wait_for_nodes(count: int, timeout: float = 120.0) -> None:
    import ray

    deadline = time.monotonic() + timeout
    while sum(node["Alive"] for node in ray.nodes()) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"the cluster did not reach {count} nodes in {timeout:.0f}s")
        time.sleep(0.5)


@dataclass(frozen=True)
class CountingSpec(SegmenterSpec):
    """The model, counting the pictures each node's actor runs (one line per picture, in `tally`/<node id>)."""

    tally: str = ""

    def load(self) -> Segmenter:
        import ray

        segmenter = super().load()
        record = Path(self.tally) / ray.get_runtime_context().get_node_id()
        predict = segmenter.predict

        def counted(image):
            outputs = predict(image)
            with record.open("a") as file:
                file.write("1\n")
            return outputs

        segmenter.predict = counted
        return segmenter


def _per_node(tally: Path) -> dict[str, int]:
    return {path.name[:8]: len(path.read_text().splitlines()) for path in sorted(tally.iterdir())}


# ------------------------------------------------------------------------------------------ side by side


def spawn(variant: str, model_path: Path, folder: Path, limit: int | None, address: str | None = None) -> dict:
    command = [sys.executable, __file__, "--variant", variant, "--model", str(model_path), "--pictures", str(folder)]
    command += (["--limit", str(limit)] if limit else []) + (["--address", address] if address else [])
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{variant} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def describe(r: dict) -> str:
    text = (f"{r['pictures']} pictures in {r['seconds']:.1f}s = {r['pictures_per_second']:.3f} pictures/s "
            f"(wall, start-up included: {r['wall_pictures_per_second']:.3f}), peak RSS {r['peak_rss_mb']:.0f} MB")
    if "workers_peak_rss_mb" in r:
        workers = ", ".join(f"{kind}s {peaks} MB" for kind, peaks in r["workers_peak_rss_mb"].items())
        text += f" (driver); {workers}; pictures per node {r['pictures_per_node']}"
    return text


def two_node_cluster(port: int) -> list[subprocess.Popen]:
    """`ray start --head` and a second `ray start --address` on this machine, two logical CPUs each (one for the model actor, one for decoding and writing), in the foreground
    (`--block`), so that ending those two processes stops their nodes."""
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token"}
    ray_cli = str(Path(sys.executable).parent / "ray")
    head = subprocess.Popen([ray_cli, "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                             "--disable-usage-stats", "--block"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    second = subprocess.Popen([ray_cli, "start", f"--address=127.0.0.1:{port}", "--num-cpus=2",
                               '--resources={"second_node": 1}', "--block"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    return [head, second]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="costly", help="'costly' (default) or a model path")
    parser.add_argument("--pictures", type=Path, default=DEFAULT_PICTURES, help="folder of pictures")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N pictures")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of all variants; best kept (default: 2)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of %(default)s")
    parser.add_argument("--two-nodes", action="store_true", help="also run on a two-node cluster on this machine")
    parser.add_argument("--port", type=int, default=6390, help="the two-node cluster's head port")
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)  # one variant, in a child process
    parser.add_argument("--address", help=argparse.SUPPRESS)
    args = parser.parse_args()

    model_path = resolve_model(args.model)
    if args.variant:
        print(json.dumps(run_variant(args.variant, model_path, args.pictures, args.limit, args.address)))
        return
    if not args.pictures.is_dir():
        raise SystemExit(f"{args.pictures}: no such folder of pictures")

    # Rounds alternate the variants and each keeps its best: on a shared machine a burst of someone else's work
    # then slows one round, not one variant.
    results: dict[str, dict] = {}
    variants = [v for v in args.variants.split(",") if v]
    for round_number in range(1, args.rounds + 1):
        for variant in variants:
            r = spawn(variant, model_path, args.pictures, args.limit)
            print(f"round {round_number} {variant:>5}: {describe(r)}", flush=True)
            if variant not in results or r["pictures_per_second"] > results[variant]["pictures_per_second"]:
                results[variant] = r
    if results:
        print(f"best of {args.rounds} round(s), model {model_path}:")
        for variant, r in results.items():
            print(f"  {variant:>5}: {describe(r)}")
    if "local" in results and "ray" in results:
        ratio = results["ray"]["pictures_per_second"] / results["local"]["pictures_per_second"]
        wall = results["ray"]["wall_pictures_per_second"] / results["local"]["wall_pictures_per_second"]
        print(f"  ray / local throughput: {ratio:.3f} (wall, start-up included: {wall:.3f})")
    if args.two_nodes:
        nodes = two_node_cluster(args.port)
        try:
            r = spawn("ray", model_path, args.pictures, args.limit, address=f"127.0.0.1:{args.port}")
            print(f"two nodes (2 logical CPUs each, one model actor per node): {describe(r)}")
        finally:
            for node in nodes:
                node.terminate()
            for node in nodes:
                node.wait(timeout=120)


if __name__ == "__main__":
    main()
