"""Evaluate models on COCO-annotated pictures: box and mask AP, precision/recall at a threshold, speed.

    python -m object_detection_utils.apps.evaluate --annotations instances_val2017.json --images val2017/ \\
        --model mask_rcnn_inception_v2_coco_2018_01_28 --model mask_rcnn_resnet101_atrous_coco_2018_01_28
    python -m object_detection_utils.apps.evaluate --annotations instances_val2017.json --results results.json

Several --model values give a speed-accuracy table over the same pictures. The report is JSON; --plot adds a
precision-recall figure.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
from pathlib import Path

from ..dataset_predictions import predict_annotated_pictures
from ..errors import InstanceSegmentationError
from ..evaluation import (
    EvaluationReport,
    EvaluationRun,
    check_results,
    evaluate_results,
    load_ground_truth,
    load_results,
    write_report,
)
from ..io.atomic import write_bytes_atomic
from ..models.zoo import DEFAULT_MODEL
from . import cli

DEFAULT_REPORT = Path("evaluation_report.json")
IOU_TYPE_NAMES = {"bbox": "box", "segm": "mask"}


def _figure(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_run(run: EvaluationRun) -> list[str]:
    """The figures of one run, for the terminal."""
    speed = "" if run.seconds_per_image is None else f", {run.seconds_per_image * 1000:.1f} ms/picture"
    lines = [f"{run.source}: {run.num_images} pictures{speed}"]
    for iou_type, metrics in run.metrics.items():
        summary, at = metrics["summary"], metrics["at_threshold"]
        name = IOU_TYPE_NAMES[iou_type]
        lines.append(
            f"  {name:4} AP {_figure(summary['AP'])}  AP50 {_figure(summary['AP50'])}  "
            f"AP75 {_figure(summary['AP75'])}  APs {_figure(summary['AP_small'])}  "
            f"APm {_figure(summary['AP_medium'])}  APl {_figure(summary['AP_large'])}  "
            f"AR100 {_figure(summary['AR_100'])}"
        )
        lines.append(
            f"  {name:4} at score >= {at['score_threshold']:g}: precision {_figure(at['precision'])}  "
            f"recall {_figure(at['recall'])}  mean IoU {_figure(at['mean_iou'])}  "
            f"(TP {at['true_positives']}, FP {at['false_positives']}, FN {at['false_negatives']})"
        )
    for iou_type, metrics in run.metrics.items():
        # classes without ground truth in these pictures have no AP: left out
        per_class = ", ".join(f"{name} {ap:.2f}" for name, ap in metrics["per_class_ap"].items() if ap is not None)
        lines.append(f"  {IOU_TYPE_NAMES[iou_type]} AP per class: {per_class}")
    for problem in run.skipped:
        lines.append(f"  skipped: {problem}")
    return lines


def format_table(runs: list[EvaluationRun]) -> list[str]:
    """The speed-accuracy table: one row per model, on the same pictures."""
    width = max(len("model"), *(len(run.source) for run in runs))
    lines = [f"{'model':<{width}}  pictures  ms/picture  box AP  mask AP  mask AP50"]
    for run in runs:
        ms = "-" if run.seconds_per_image is None else f"{run.seconds_per_image * 1000:.1f}"
        lines.append(f"{run.source:<{width}}  {run.num_images:>8}  {ms:>10}  {_figure(run.ap('bbox')):>6}  "
                     f"{_figure(run.ap('segm')):>7}  {_figure(run.ap('segm', 'AP50')):>9}")
    return lines


def precision_recall_plot(report: EvaluationReport, image_format: str = "png") -> bytes:
    """Precision against recall (mean over classes) at IoU 0.50 and 0.75, box and mask side by side."""
    from matplotlib.figure import Figure

    iou_types = [t for t in IOU_TYPE_NAMES if any(t in run.metrics for run in report.runs)]
    figure = Figure(figsize=(5.5 * len(iou_types), 4.5), layout="constrained")
    axes = figure.subplots(1, len(iou_types), squeeze=False)[0]
    for ax, iou_type in zip(axes, iou_types):
        for number, run in enumerate(report.runs):
            if iou_type not in run.metrics:
                continue
            curve = run.metrics[iou_type]["pr_curve"]
            color = f"C{number % 10}"
            for key, style, label in (("precision_iou50", "-", "IoU 0.50"), ("precision_iou75", "--", "IoU 0.75")):
                precision = [float("nan") if p is None else p for p in curve[key]]
                ax.plot(curve["recall"], precision, style, color=color, label=f"{run.source}, {label}")
        ax.set(title=f"{IOU_TYPE_NAMES[iou_type]} precision-recall", xlabel="recall", ylabel="precision",
               xlim=(0, 1), ylim=(0, 1.02))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", loc="lower left")
    buffer = io.BytesIO()
    figure.savefig(buffer, format=image_format, dpi=100)
    return buffer.getvalue()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m object_detection_utils.apps.evaluate",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--annotations", type=Path, required=True, help="COCO annotations JSON (ground truth)")
    parser.add_argument("--images", type=Path, default=None,
                        help="folder of the annotated pictures (needed with --model)")
    parser.add_argument("--results", type=Path, default=None,
                        help="evaluate this COCO results JSON (as the batch script writes) instead of a model")
    parser.add_argument("--score-threshold", type=float, default=0.5,
                        help="score for precision, recall and mean IoU (default: %(default)s)")
    parser.add_argument("--max-images", type=int, default=None,
                        help="evaluate only the first N annotated pictures (by id)")
    parser.add_argument("--report", type=Path, default=DEFAULT_REPORT,
                        help="where to write the JSON report (default: %(default)s)")
    parser.add_argument("--plot", type=Path, default=None,
                        help="also write a precision-recall figure (.png, .pdf or .svg)")
    cli.add_model_arguments(parser, several_models=True)
    parser.set_defaults(min_score=0.0)  # AP needs every detection; --score-threshold is for precision/recall
    args = cli.parse_args(parser, argv)
    if args.results is not None and args.model:
        parser.error("give --results or --model, not both")
    if args.results is None and args.images is None:
        parser.error("--images is needed to run a model (or give --results)")
    if args.max_images is not None and args.max_images < 1:
        parser.error("--max-images must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plot_format = None
    if args.plot is not None:
        plot_format = args.plot.suffix.lower().lstrip(".")
        if plot_format not in ("png", "pdf", "svg"):
            raise InstanceSegmentationError(f"{args.plot}: unsupported plot type {args.plot.suffix!r}")
    ground_truth = load_ground_truth(args.annotations)
    image_ids = sorted(ground_truth.getImgIds())[: args.max_images]

    runs: list[EvaluationRun] = []
    if args.results is not None:
        entries = load_results(args.results, ground_truth)
        check_results(entries, ground_truth, source=str(args.results))
        wanted = set(image_ids)
        entries = [entry for entry in entries if entry["image_id"] in wanted]
        try:
            runs.append(evaluate_results(ground_truth, entries, str(args.results), args.score_threshold, image_ids))
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise InstanceSegmentationError(f"{args.results}: malformed COCO results ({error!r})") from None
    else:
        if not args.images.is_dir():
            raise InstanceSegmentationError(f"{args.images}: no such picture folder")
        for spec in args.model or [DEFAULT_MODEL]:
            segmenter = cli.segmenter_from_args(args, model=spec)
            predictions = predict_annotated_pictures(segmenter, ground_truth, args.images, image_ids)
            if not predictions.image_ids:
                raise InstanceSegmentationError(f"{args.images}: none of the annotated pictures could be read")
            run = evaluate_results(
                ground_truth, predictions.entries, segmenter.name, args.score_threshold, predictions.image_ids,
                seconds_per_image=statistics.fmean(predictions.seconds), skipped=predictions.skipped,
                with_masks=segmenter.model.has_masks,
            )
            runs.append(run)
            print("\n".join(format_run(run)), flush=True)

    if args.results is not None:
        print("\n".join(format_run(runs[0])))
    if len(runs) > 1:
        print("\n".join(["", *format_table(runs)]))
    images = None if args.images is None else str(args.images)
    report = EvaluationReport(str(args.annotations), images, args.score_threshold, runs)
    write_report(args.report, report)
    written = [str(args.report)]
    if args.plot is not None:
        write_bytes_atomic(args.plot, precision_recall_plot(report, plot_format))
        written.append(str(args.plot))
    print(f"wrote {', '.join(written)}", file=sys.stderr)
    return 0


def run() -> None:
    sys.exit(cli.run_main(main))


if __name__ == "__main__":
    run()
