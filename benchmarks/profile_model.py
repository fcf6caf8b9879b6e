#!/usr/bin/env python3
"""Where one picture's time goes in a model: each part of our exports timed alone, and the whole graph.

    nice python benchmarks/profile_model.py MODEL [--picture-size 480x640] [--repeat 5]
        [--nms-version v2|v1|batched] [--proposals N] [--mask-detections N] [--compare-test-options]
        [--compare-mask-detections 100,50,20]

MODEL is an export of ours (a folder with training_options.json: rebuilt from it and the SavedModel's weights)
or any model `load_model` reads (zoo TF1 graphs and TF2 SavedModels: whole-graph time only). Each part is a
`tf.function` fed the previous parts' real outputs for one generated shapes picture; the table gives its
median milliseconds, its share of the parts' sum, its FLOPs (TensorFlow's graph profiler: Conv2D, MatMul, ...,
counting a multiply-add as 2) and the GFLOP/s achieved.

Peak: `cores x clock x f32 FLOPs per cycle per core`, with the clock from /proc/cpuinfo (its base clock: boost
is not counted) and 64 FLOPs per cycle: two 512-bit FMA pipes (16 f32 lanes x 2 FLOPs x 2 pipes), as AMD Zen 5
server cores (the ones with avx512_vp2intersect) and Intel Xeons have. Pass --flops-per-cycle 32 for CPUs with
two 256-bit FMA pipes (Zen 2-4, AVX2 Intel). A 2048x2048 matmul is timed too; when it runs faster than that
peak (the reported clock is below the real one), its rate is the peak used.

--compare-test-options re-times the proposal / NMS-dependent parts under each test-time choice (proposals
kept 1000/300, NMS v2/v1/batched), on the same backbone outputs; --compare-mask-detections does the same for
the detection slots that get a mask (the detection NMS, mask ROI align and mask head depend on it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from object_detection_utils import load_model  # noqa: E402


def median_ms(call, repeat: int) -> float:
    call()  # the first call traces and compiles
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def graph_flops(concrete) -> float:
    """FLOPs of a concrete function's graph by TensorFlow's profiler (0 when it finds none)."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    frozen = convert_variables_to_constants_v2(concrete)
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    profile = tf.compat.v1.profiler.profile(frozen.graph, options=options)
    return float(profile.total_float_ops) if profile is not None else 0.0


def cpu_peak_gflops(flops_per_cycle: int) -> tuple[float, str]:
    cores = os.cpu_count() or 1
    mhz = 0.0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                mhz = float(line.split(":")[1])
                break
    except OSError:
        pass
    peak = cores * mhz / 1000 * flops_per_cycle
    return peak, f"{cores} cores x {mhz / 1000:.2f} GHz x {flops_per_cycle} f32 FLOPs/cycle = {peak:.0f} GFLOP/s"


def matmul_gflops(repeat: int) -> float:
    import tensorflow as tf

    a = tf.random.normal([2048, 2048])
    matmul = tf.function(lambda: tf.linalg.matmul(a, a))
    ms = median_ms(lambda: matmul().numpy(), repeat)
    return 2 * 2048**3 / (ms / 1000) / 1e9


def picture(size: tuple[int, int]) -> np.ndarray:
    from object_detection_utils.shapes import random_shapes_picture

    return random_shapes_picture(np.random.default_rng(0), size).image


def profile_parts(folder: Path, image: np.ndarray, repeat: int, overrides: dict) -> list[tuple[str, float, float]]:
    """(part, ms, FLOPs) for each part of our export at `folder`."""
    import tensorflow as tf

    from object_detection_utils.models.maskrcnn_parts import MaskRcnnParts

    parts = MaskRcnnParts.from_export(folder, overrides)
    model, config = parts.model, parts.config
    steps = parts.functions()
    picture_tensor, info = steps["preprocess"](tf.constant(image[None]))
    anchors = {k: tf.constant(v[None]) for k, v in parts.module._build_anchor_boxes().items()}
    image_shape = info[:, 1, :]

    backbone = tf.function(lambda x: model.backbone(x))
    decoder = tf.function(lambda f: model.decoder(f))
    rpn_head = tf.function(lambda f: model.rpn_head(f))
    backbone_out = backbone(picture_tensor)
    features = decoder(backbone_out)
    scores, boxes = rpn_head(features)
    proposals = tf.function(lambda: model.roi_generator(boxes, scores, anchors, image_shape, training=False)[0])
    rois = proposals()
    box_align = tf.function(lambda: model.roi_aligner(features, rois))
    crops = box_align()
    box_head = tf.function(lambda c: model.detection_head[0](c))
    class_outputs, box_outputs = box_head(crops)
    nms = tf.function(lambda: model.detection_generator(box_outputs, class_outputs, rois, image_shape,
                                                        [10.0, 10.0, 5.0, 5.0], bbox_per_class=True))
    found = nms()
    mask_align = tf.function(lambda: model.mask_roi_aligner(features, found["detection_boxes"]))
    mask_crops = mask_align()
    classes = tf.cast(found["detection_classes"], tf.int32)
    mask_head = tf.function(lambda c, k: model.mask_head([c, k]))

    proposal_count = config.roi_generator.test_num_proposals
    detections = config.detection_generator.max_num_detections
    rows = [
        (f"backbone ResNet{parts.options.backbone.removeprefix('resnet')}", backbone, (picture_tensor,)),
        ("FPN", decoder, (backbone_out,)),
        ("RPN head", rpn_head, (features,)),
        (f"proposals (per-level NMS, {proposal_count} kept)", proposals, ()),
        (f"box ROI align, {proposal_count} proposals", box_align, ()),
        (f"box head on {proposal_count} proposals", box_head, (crops,)),
        (f"detection NMS ({config.detection_generator.nms_version})", nms, ()),
        (f"mask ROI align, {detections} boxes", mask_align, ()),
        (f"mask head on {detections} boxes", mask_head, (mask_crops, classes)),
    ]
    results = []
    for name, function, inputs in rows:
        ms = median_ms(lambda f=function, i=inputs: tf.nest.map_structure(lambda t: t.numpy(), f(*i)), repeat)
        flops = graph_flops(function.get_concrete_function(*inputs))
        results.append((name, ms, flops))
    return results


def print_table(rows: list[tuple[str, float, float]], peak: float) -> None:
    total = sum(ms for _, ms, _ in rows)
    print("| part | ms | share | GFLOP | GFLOP/s | % of peak |\n|---|---|---|---|---|---|")
    for name, ms, flops in rows:
        rate = flops / 1e9 / (ms / 1000) if flops else 0.0
        print(f"| {name} | {ms:.1f} | {ms / total:.0%} | {flops / 1e9:.2f} | {rate:.1f} | "
              f"{rate / peak:.0%} |" if flops else f"| {name} | {ms:.1f} | {ms / total:.0%} | - | - | - |")
    flops = sum(f for _, _, f in rows)
    print(f"| **sum of parts** | **{total:.0f}** | 100% | {flops / 1e9:.2f} | {flops / 1e9 / (total / 1000):.1f} | "
          f"{flops / 1e9 / (total / 1000) / peak:.0%} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="model folder, .pb or SavedModel")
    parser.add_argument("--picture-size", default="480x640", help="HxW of the generated picture (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--nms-version", choices=("v1", "v2", "batched"), default=None,
                        help="re-build our export with this detection NMS (default: the export's)")
    parser.add_argument("--proposals", type=int, default=None, help="proposals kept at test time (default: the export's)")
    parser.add_argument("--mask-detections", type=int, default=None,
                        help="detection slots that get a mask (default: the export's)")
    parser.add_argument("--compare-test-options", action="store_true")
    parser.add_argument("--compare-mask-detections", default=None, help="comma-separated slot counts, e.g. 100,50,20")
    parser.add_argument("--flops-per-cycle", type=int, default=64)
    args = parser.parse_args()

    height, width = (int(v) for v in args.picture_size.split("x"))
    image = picture((height, width))
    peak, how = cpu_peak_gflops(args.flops_per_cycle)
    reached = matmul_gflops(args.repeat)
    print(f"peak: {how}; a 2048x2048 matmul reaches {reached:.0f} GFLOP/s in TensorFlow")
    if reached > peak:  # the clock /proc/cpuinfo reports is below the one the CPU runs at (boost, a hypervisor)
        peak = reached
        print(f"the matmul beats that peak: {peak:.0f} GFLOP/s, what it reached, is the peak used below")
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

    model = load_model(args.model)
    whole = median_ms(lambda: model.predict(image), args.repeat)
    print(f"whole graph ({model.kind}, {height}x{width} picture): {whole:.0f} ms")

    folder = Path(args.model)
    if not (folder / "training_options.json").is_file():
        print("not one of our exports: whole-graph time only")
        return 0
    overrides: dict = {"detection_generator": {}}
    if args.nms_version:
        overrides["detection_generator"]["nms_version"] = args.nms_version
    if args.mask_detections:
        overrides["detection_generator"]["max_num_detections"] = args.mask_detections
    if args.proposals:
        overrides["roi_generator"] = {"test_num_proposals": args.proposals}
    print_table(profile_parts(folder, image, args.repeat, overrides), peak)
    if args.compare_test_options:
        for proposals in (1000, 300):
            for nms in ("v2", "v1", "batched"):
                rows = profile_parts(folder, image, args.repeat, {"roi_generator": {"test_num_proposals": proposals},
                                                                  "detection_generator": {"nms_version": nms}})
                changed = ", ".join(f"{name.split(',')[0].split(' (')[0]} {ms:.0f}" for name, ms, _ in rows[3:7])
                print(f"proposals {proposals}, NMS {nms}: sum of parts {sum(ms for _, ms, _ in rows):.0f} ms "
                      f"({changed} ms)")
    if args.compare_mask_detections:
        for detections in (int(n) for n in args.compare_mask_detections.split(",")):
            rows = profile_parts(folder, image, args.repeat, {
                **overrides, "detection_generator": {**overrides["detection_generator"], "max_num_detections": detections}})
            changed = ", ".join(f"{name.split(',')[0].split(' (')[0]} {ms:.0f}" for name, ms, _ in rows[6:])
            print(f"mask detections {detections}: sum of parts {sum(ms for _, ms, _ in rows):.0f} ms ({changed} ms; "
                  f"mask head {rows[8][2] / 1e9:.1f} GFLOP)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
