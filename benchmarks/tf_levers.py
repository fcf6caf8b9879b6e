#!/usr/bin/env python3
"""TensorFlow's own levers on a CPU, side by side in one run: thread counts, oneDNN, XLA on the heavy parts.

    nice python benchmarks/tf_levers.py --stand-in /tmp/r50_cpu [--trained ../shared/models/shapes-r18-128]
        [--pictures 4] [--rounds 3] [--groups threads,onednn,xla]

Per model, three groups, each with its own default (the first row, what `load_model` runs today):

    threads   intra-op x inter-op threads 1/2 x 1/2 (TensorFlow's default, 0 x 0, is one thread per core)
    onednn    TF_ENABLE_ONEDNN_OPTS=0 (oneDNN off); oneDNN's bf16 auto mixed precision (grappler's
              auto_mixed_precision_onednn_bfloat16) where the CPU has native bf16
    xla       jit_compile=True on the convolutional part (backbone + FPN + RPN head) and on the box head, on our
              exports taken apart (models/maskrcnn_parts.py; the default row runs the same steps
              without XLA)

Threads and oneDNN are fixed when TensorFlow starts, so each variant of those groups is a child process of this
script that holds its model loaded; the XLA variants share one child. The script hands each picture to every
variant in turn (the order rotating picture by picture), one at a time, so load from other processes on the
machine falls on all variants alike: only these side-by-side ratios mean anything on a shared machine.

Per variant: median seconds per picture; × = the median of the per-picture ratios default / variant, with each
round's median beside it (is a gain repeatable?); parity against the default: the parity gate's comparison
(models/backends/gate.py: instances scoring >= 0.3 matched by class and box; worst |Δscore|, box and pasted-mask
IoU) at the f32 tolerance and at bf16's, the largest relative difference of the raw outputs (scores, boxes, box
masks: max |Δ| / max |x|) and, for XLA, of the compiled part's own outputs on the same inputs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cpu_backends import SHARED, picture_folder  # benchmarks/, this script's folder

COMPARED_OUTPUTS = ("detection_scores", "detection_boxes", "detection_masks")


# ------------------------------------------------------------------------------------------------ child side


def reply(channel: TextIO, message: dict) -> None:
    channel.write(json.dumps(message) + "\n")
    channel.flush()


def serve(spec: dict) -> None:
    """A child: load the variants `spec` names, then run `picture variant` requests from stdin, one per line,
    answering each with its seconds; the first run of each picture leaves its outputs in `spec["outputs"]`."""
    channel = os.fdopen(os.dup(1), "w")  # the replies; whatever a library prints goes to the log instead
    os.dup2(2, 1)
    import tensorflow as tf

    if spec.get("threads"):
        intra, inter = spec["threads"]
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    if spec.get("amp_bf16"):
        tf.config.optimizer.set_experimental_options({"auto_mixed_precision_onednn_bfloat16": True})
    from object_detection_utils import read_image

    images = [read_image(path)[None] for path in spec["pictures"]]
    runs, extra = (xla_variants if spec.get("xla") else model_variant)(spec["model"], images)
    for run in runs:  # the first call (tracing, compiling) is not a picture's time
        run(images[0])
    reply(channel, {"ready": True, **extra})
    outputs = Path(spec["outputs"])
    for line in sys.stdin:
        picture, variant = (int(word) for word in line.split())
        start = time.perf_counter()
        found = runs[variant](images[picture])
        seconds = time.perf_counter() - start
        path = outputs / f"{variant}_{picture}.npz"
        if not path.exists():
            np.savez(path, **found)
        reply(channel, {"seconds": seconds})


def model_variant(model: str, images: list) -> tuple[list, dict]:
    """The model as `load_model` runs it (on TensorFlow)."""
    from object_detection_utils import load_model

    loaded = load_model(model, warm_up=False)
    return [loaded.predict_batch], {}


def xla_variants(model: str, images: list) -> tuple[list, dict]:
    """Our export's steps as they are, then with XLA on `dense`, on `box_head`, on both; and the compiled parts'
    largest relative differences from the plain ones on the same inputs (every picture)."""
    import tensorflow as tf

    from object_detection_utils.models.backends.gate import relative_error
    from object_detection_utils.models.maskrcnn_parts import MaskRcnnParts, run_steps

    parts = MaskRcnnParts.from_export(model)
    steps = parts.functions()
    compiled = {name: tf.function(steps[name].python_function, input_signature=steps[name].input_signature,
                                  jit_compile=True, autograph=False) for name in ("dense", "box_head")}
    variants = [steps, {**steps, "dense": compiled["dense"]}, {**steps, "box_head": compiled["box_head"]},
                {**steps, **compiled}]
    errors = {"dense": 0.0, "box_head": 0.0}
    levels = parts.levels
    for image in images:
        picture, info = steps["preprocess"](tf.constant(image))
        plain, fast = steps["dense"](picture), compiled["dense"](picture)
        errors["dense"] = max(errors["dense"], *(relative_error(plain[k].numpy(), fast[k].numpy()) for k in plain))
        features, scores, boxes = ([plain[f"{kind}_{level}"] for level in levels]
                                   for kind in ("features", "scores", "boxes"))
        _, crops = steps["propose"](features, scores, boxes, info)
        plain, fast = steps["box_head"](crops), compiled["box_head"](crops)
        errors["box_head"] = max(errors["box_head"],
                                 *(relative_error(plain[k].numpy(), fast[k].numpy()) for k in plain))
    part_errors = [{}, {"dense": errors["dense"]}, {"box_head": errors["box_head"]}, errors]
    return [lambda image, s=s: run_steps(s, levels, image) for s in variants], {"part_errors": part_errors}


# ----------------------------------------------------------------------------------------------- parent side


@dataclass
class Variant:
    label: str
    process: subprocess.Popen
    index: int  # the variant's number inside its process
    outputs: Path
    part_errors: dict[str, float] = field(default_factory=dict)
    times: list[float] = field(default_factory=list)

    def run(self, picture: int) -> float:
        self.process.stdin.write(f"{picture} {self.index}\n")
        self.process.stdin.flush()
        return read_reply(self.process)["seconds"]

    def found(self, picture: int) -> dict[str, np.ndarray]:
        with np.load(self.outputs / f"{self.index}_{picture}.npz") as saved:
            return dict(saved)


def read_reply(process: subprocess.Popen) -> dict:
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"a child process ended (exit code {process.wait()}); see its log")
    return json.loads(line)


def start(spec: dict, env: dict[str, str], work: Path, log: Path) -> subprocess.Popen:
    spec = {**spec, "outputs": str(work)}
    work.mkdir(parents=True)
    return subprocess.Popen([sys.executable, __file__, "--serve", json.dumps(spec)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=log.open("w"), text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env})


def group_specs(group: str, model: Path, pictures: list[str], bf16: bool) -> list[tuple[list[str], dict, dict]]:
    """(labels, spec, extra environment) of each child process of a group; the default comes first."""
    base = {"model": str(model), "pictures": pictures}
    if group == "threads":
        return [(["default (0 x 0)"], base, {})] + [
            ([f"intra {intra} x inter {inter}"], {**base, "threads": [intra, inter]}, {})
            for intra in (1, 2) for inter in (1, 2)]
    if group == "onednn":
        return ([(["default (oneDNN on)"], base, {}), (["oneDNN off"], base, {"TF_ENABLE_ONEDNN_OPTS": "0"})]
                + ([(["oneDNN bf16 auto mixed precision"], {**base, "amp_bf16": True}, {})] if bf16 else []))
    return [(["steps, no XLA", "XLA on backbone + FPN + RPN head", "XLA on the box head", "XLA on both"],
             {**base, "xla": True}, {})]


def run_group(group: str, model: Path, pictures: list[Path], rounds: int, work: Path, bf16: bool) -> list[Variant]:
    variants: list[Variant] = []
    processes = []
    try:
        for number, (labels, spec, env) in enumerate(group_specs(group, model, [str(p) for p in pictures], bf16)):
            folder = work / f"{group}_{number}"
            process = start(spec, env, folder, work / f"{group}_{number}.log")
            processes.append(process)
            variants += [Variant(label, process, index, folder) for index, label in enumerate(labels)]
        for process in processes:  # loaded and warm, one after the other (they load concurrently)
            ready = read_reply(process)
            for variant, errors in zip([v for v in variants if v.process is process], ready.get("part_errors", [])):
                variant.part_errors = errors
        for turn in range(rounds * len(pictures)):
            for offset in range(len(variants)):
                variant = variants[(turn + offset) % len(variants)]
                variant.times.append(variant.run(turn % len(pictures)))
    finally:
        for process in processes:
            process.stdin.close()
            process.wait()
    return variants


def parity(reference: Variant, variant: Variant, images: list[np.ndarray]) -> list[str]:
    """The gate's verdicts at the f32 and the bf16 tolerance, and the raw outputs' largest relative difference."""
    from object_detection_utils.models.backends.gate import TOLERANCES, relative_error, run_gate

    found = {}
    for precision in ("f32", "bf16"):
        replies = iter([side.found(i) for i in range(len(images)) for side in (reference, variant)])
        verdict = run_gate(lambda _: next(replies), lambda _: next(replies), images, TOLERANCES[precision])
        worst = verdict.worst
        found[precision] = (f"passed: {verdict.matched} instances, |Δscore| {worst['score_difference']:.1e}, "
                            f"box IoU {worst['box_iou']:.4f}, mask IoU {worst['mask_iou']:.4f}"
                            if verdict.passed else f"failed: {verdict.reason}")
    difference = max(relative_error(reference.found(i)[key], variant.found(i)[key])
                     for i in range(len(images)) for key in COMPARED_OUTPUTS if key in reference.found(i))
    return [found["f32"], found["bf16"], f"{difference:.1e}"]


def print_group(title: str, variants: list[Variant], images: list[np.ndarray], rounds: int) -> None:
    reference = variants[0]
    per_round = len(reference.times) // rounds
    print(f"\n{title} (load average now {os.getloadavg()[0]:.1f}):")
    print("| variant | median s | × | × each round | gate (f32 tolerance) | gate (bf16 tolerance) | outputs rel. diff "
          "| part rel. diff |")
    print("|---|---|---|---|---|---|---|---|")
    for variant in variants:
        ratios = [a / b for a, b in zip(reference.times, variant.times)]
        rounds_text = " / ".join(f"{statistics.median(ratios[r * per_round:(r + 1) * per_round]):.2f}"
                                 for r in range(rounds))
        checks = ["-"] * 3 if variant is reference else parity(reference, variant, images)
        parts = ", ".join(f"{part} {error:.1e}" for part, error in variant.part_errors.items()) or "-"
        print(f"| {variant.label} | {statistics.median(variant.times):.3f} | {statistics.median(ratios):.2f} | "
              f"{rounds_text} | {' | '.join(checks)} | {parts} |", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stand-in", type=Path,
                        help="the zoo-scale export (instance_segmentation_train.py random-model)")
    parser.add_argument("--trained", type=Path, default=SHARED / "models" / "shapes-r18-128")
    parser.add_argument("--pictures", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="passes over the pictures")
    parser.add_argument("--groups", default="threads,onednn,xla")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(json.loads(args.serve))
        return 0

    from object_detection_utils import read_image
    from object_detection_utils.models.backends import cpu_has_bf16

    bf16 = cpu_has_bf16()
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; native bf16: {bf16}")
    models = [(f"zoo-scale stand-in {args.stand_in}", args.stand_in, "zoo")] if args.stand_in else []
    if args.trained and args.trained.is_dir():
        models.append((f"trained {args.trained.name}", args.trained, "shapes"))
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        for title, model, kind in models:
            folder = picture_folder(kind, args.pictures, work)
            pictures = sorted(folder.iterdir())
            images = [read_image(path) for path in pictures]
            print(f"\n## {title}: {len(pictures)} pictures ({', '.join(p.name for p in pictures)}), "
                  f"{args.rounds} rounds")
            for group in args.groups.split(","):
                variants = run_group(group, model, pictures, args.rounds, work / f"{kind}_{group}", bf16)
                print_group(f"{group}: " + ("child processes, one per variant" if group != "xla" else
                                            "one child process, the variants taking turns"),
                            variants, images, args.rounds)
    print(f"\nload average at end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
