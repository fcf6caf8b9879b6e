#!/usr/bin/env python3
"""Video speed, display latency and memory, measured side by side in one run.

    nice -n 10 python benchmarks/video_benchmark.py                    # the shared car video, ~5 minutes
    python benchmarks/video_benchmark.py --video clip.mp4 --memory-seconds 300 --skip-costly

Models: the tests' tiny model (outputs only: the cost is our own post-processing, drawing and video I/O),
and a costly model with random weights and the zoo's signature (a convolutional backbone with ROI-aligned
mask head, about the work of a small Mask R-CNN) standing in for a real one on this CPU.

1. every frame of the file: frames per second and inference time;
2. live (the file played at its frame rate as if from a camera): newest-frame reader against a FIFO queue
   that processes every frame in order: segmented fps, display latency (capture -> shown), peak queue;
3. memory over a long live run with the newest-frame reader: RSS at start, every interval, and at the end.
"""

from __future__ import annotations

import argparse
import os
import queue
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from object_detection_utils import load_model  # noqa: E402
from object_detection_utils.apps.video_segmentation import VideoOptions, segment_frames, segment_video  # noqa: E402
from object_detection_utils.io.video_sources import Frame, FrameSource, open_source  # noqa: E402

SHARED_VIDEO = REPO.parent / "shared" / "data" / "video" / "car-detection.mp4"


def rss_mib() -> float:
    """Resident memory of this process now, in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_costly_model(folder: Path, detections: int = 20, slots: int = 100) -> Path:
    """A TF1 zoo folder whose graph does real convolutional work with random weights.

    The picture is resized as the zoo's Mask R-CNN configs do (short side 800, long side at most 1365).
    Backbone: 12 3x3 convolutions down to 1/32 (32..512 channels); heads: boxes from the
    pooled features, 15x15 masks ROI-aligned (crop_and_resize) from the 1/8 feature map for every slot.
    Scores fall from 0.95 to 0.30 over the first `detections` slots, so about 14 instances pass 0.5.
    """
    import tensorflow as tf

    rng = np.random.default_rng(0)

    def conv(x, channels_out, stride):
        channels_in = int(x.shape[-1])
        kernel = rng.normal(0, np.sqrt(2 / (9 * channels_in)), (3, 3, channels_in, channels_out)).astype(np.float32)
        x = tf.nn.conv2d(x, tf.constant(kernel), strides=stride, padding="SAME")
        return tf.nn.relu(x)

    graph = tf.Graph()
    with graph.as_default():
        images = tf.compat.v1.placeholder(tf.uint8, [None, None, None, 3], name="image_tensor")
        # like the zoo's keep-aspect-ratio resizer: short side 800, long side at most 1365
        size = tf.cast(tf.shape(images)[1:3], tf.float32)
        scale = tf.minimum(800.0 / tf.reduce_min(size), 1365.0 / tf.reduce_max(size))
        x = tf.image.resize(tf.cast(images, tf.float32), tf.cast(tf.round(size * scale), tf.int32)) / 127.5 - 1.0
        x.set_shape([None, None, None, 3])
        for channels, stride in [(32, 2), (64, 2), (64, 1), (64, 1), (128, 2), (128, 1), (128, 1)]:
            x = conv(x, channels, stride)
        stride8 = x
        for channels, stride in [(256, 2), (256, 1), (256, 1), (512, 2), (512, 1)]:
            x = conv(x, channels, stride)
        pooled = tf.reduce_mean(x, axis=[1, 2])  # (B, 512)
        dense = rng.normal(0, 0.05, (512, slots * 4)).astype(np.float32)
        corners = tf.sigmoid(tf.reshape(pooled @ tf.constant(dense), [-1, slots, 2, 2]))
        boxes = tf.concat([tf.reduce_min(corners, axis=2), tf.reduce_max(corners, axis=2)], axis=2)  # y1 x1 y2 x2
        batch = tf.shape(images)[0]
        flat_boxes = tf.reshape(boxes, [-1, 4])
        box_indices = tf.repeat(tf.range(batch), slots)
        crops = tf.image.crop_and_resize(stride8, flat_boxes, box_indices, [15, 15])  # (B*slots, 15, 15, 128)
        mask_kernel = rng.normal(0, 0.1, (1, 1, 128, 1)).astype(np.float32)
        masks = tf.sigmoid(tf.nn.conv2d(crops, tf.constant(mask_kernel), 1, "SAME") + 0.5)
        scores = np.zeros(slots, np.float32)
        scores[:detections] = np.linspace(0.95, 0.30, detections)
        tf.identity(boxes, name="detection_boxes")
        tf.identity(tf.tile(tf.constant(scores)[None], [batch, 1]), name="detection_scores")
        tf.identity(tf.fill([batch, slots], 3.0), name="detection_classes")
        tf.identity(tf.fill([batch], float(detections)), name="num_detections")
        tf.identity(tf.reshape(masks, [-1, slots, 15, 15]), name="detection_masks")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "frozen_inference_graph.pb").write_bytes(graph.as_graph_def().SerializeToString())
    return folder


class LoopingFile:
    """A video file read over and over, played as a camera would deliver it (for the long memory run)."""

    live = False  # not live: the newest-frame reader paces it at `fps`
    frame_count = None

    def __init__(self, path: Path) -> None:
        self.path = path
        self._source = open_source(path)
        self.name = f"{path.name} (looping)"
        self.fps = self._source.fps

    def read(self) -> np.ndarray | None:
        image = self._source.read()
        if image is None:
            self._source.close()
            self._source = open_source(self.path)
            image = self._source.read()
        return image

    def close(self) -> None:
        self._source.close()


def fifo_frames(source: FrameSource, stats: dict) -> Iterator[Frame]:
    """Baseline: every frame queued in order (no dropping), read at the source's pace on a thread."""
    frames: queue.Queue = queue.Queue()
    stop = threading.Event()

    def read() -> None:
        start, index = time.monotonic(), 0
        while not stop.is_set():
            time.sleep(max(0.0, start + index / source.fps - time.monotonic()))
            image = source.read()
            if image is None:
                break
            frames.put(Frame(index, image, time.monotonic()))
            stats["peak_queue"] = max(stats.get("peak_queue", 0), frames.qsize())
            index += 1
        frames.put(None)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    try:
        while (frame := frames.get()) is not None:
            yield frame
    finally:
        stop.set()
        thread.join(5)
        source.close()


def ms(values: list[float], q: float | None = None) -> str:
    if q is None:
        return f"{1000 * statistics.mean(values):.0f}"
    return f"{1000 * float(np.quantile(values, q)):.0f}"


def run_every_frame(model, video: Path, frames: int) -> None:
    options = VideoOptions(every_frame=True, max_frames=frames, progress=False)
    summary = segment_video(model, open_source(video), options)
    print(f"  every frame     : {summary.frames_processed} frames, {summary.fps:.2f} fps, "
          f"inference {ms(summary.inference_seconds)} ms/frame, end-to-end {1000 / summary.fps:.0f} ms/frame")


def run_live(model, video: Path, frames: int) -> None:
    newest = segment_video(model, open_source(video), VideoOptions(max_frames=frames, progress=False))
    source = open_source(video)
    stats: dict = {}
    latencies, start, processed = [], time.monotonic(), 0
    for result in segment_frames(model, fifo_frames(source, stats)):
        latencies.append(time.monotonic() - result.frame.captured_at)
        processed += 1
        if processed >= frames:
            break
    fifo_seconds = time.monotonic() - start
    print(f"  live, newest    : {newest.frames_processed} segmented of {newest.frames_read} delivered, "
          f"{newest.fps:.2f} fps, latency mean {ms(newest.latencies)} / p95 {ms(newest.latencies, 0.95)} / "
          f"max {ms([max(newest.latencies)])} ms")
    print(f"  live, FIFO queue: {processed} segmented, {processed / fifo_seconds:.2f} fps, latency mean "
          f"{ms(latencies)} / p95 {ms(latencies, 0.95)} / max {ms([max(latencies)])} ms, "
          f"peak queue {stats.get('peak_queue', 0)} frames")
    print(f"  latency ratio FIFO / newest: mean {statistics.mean(latencies) / statistics.mean(newest.latencies):.1f}x, "
          f"max {max(latencies) / max(newest.latencies):.1f}x")


def run_memory(model, video: Path, seconds: float, interval: float) -> None:
    samples: list[tuple[float, float, int]] = []
    start = time.monotonic()
    next_sample = [start]

    def on_frame(result, _shown_at) -> None:
        now = time.monotonic()
        if now >= next_sample[0]:
            samples.append((now - start, rss_mib(), result.frame.index))
            next_sample[0] += interval
        if now - start >= seconds:
            raise KeyboardInterrupt  # the run's own stop path, as Ctrl+C would

    before = rss_mib()
    summary = segment_video(model, LoopingFile(video), VideoOptions(progress=False), on_frame=on_frame)
    after = rss_mib()
    print(f"  RSS before {before:.0f} MiB; during: "
          + ", ".join(f"{t:.0f}s {r:.0f} MiB (frame {i})" for t, r, i in samples))
    print(f"  RSS after {after:.0f} MiB; {summary.frames_processed} frames segmented of {summary.frames_read} "
          f"delivered in {summary.seconds:.0f}s ({summary.fps:.2f} fps); "
          f"growth from the 1st sample to the last: {samples[-1][1] - samples[0][1]:+.1f} MiB; "
          f"peak RSS {peak_rss_mib():.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=SHARED_VIDEO)
    parser.add_argument("--frames", type=int, default=150, help="frames per tiny-model measurement")
    parser.add_argument("--costly-frames", type=int, default=25, help="frames per costly-model measurement")
    parser.add_argument("--memory-seconds", type=float, default=120)
    parser.add_argument("--memory-interval", type=float, default=20)
    parser.add_argument("--skip-costly", action="store_true")
    args = parser.parse_args()
    if not args.video.is_file():
        sys.exit(f"{args.video}: no such video (pass --video)")
    import tiny_model

    source = open_source(args.video)
    frame = source.read()
    source.close()
    print(f"video {args.video.name}: {frame.shape[1]}x{frame.shape[0]} at {source.fps:g} fps; "
          f"{os.cpu_count()} CPUs; RSS at start {rss_mib():.0f} MiB")
    with tempfile.TemporaryDirectory() as tmp:
        models = [("tiny", load_model(tiny_model.build_frozen_graph(Path(tmp) / "tiny")), args.frames)]
        if not args.skip_costly:
            costly = load_model(build_costly_model(Path(tmp) / "costly"))
            models.append(("costly (random weights)", costly, args.costly_frames))
        for name, model, frames in models:
            print(f"{name} model:")
            run_every_frame(model, args.video, frames)
            run_live(model, args.video, frames)
        print(f"memory, tiny model, newest-frame reader, {args.memory_seconds:g}s looping the video:")
        run_memory(models[0][1], args.video, args.memory_seconds, args.memory_interval)


if __name__ == "__main__":
    main()
