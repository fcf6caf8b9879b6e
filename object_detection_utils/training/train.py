"""Training a Model Garden Mask R-CNN from TFRecords, with checkpoints that an interrupted run resumes from."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from ..errors import InstanceSegmentationError
from ..io.atomic import write_text_atomic
from ..models.export_options import OPTIONS_FILE, TrainOptions, experiment_config

# Changing these between runs would not fit the saved weights.
MODEL_SHAPING_FIELDS = ("num_classes", "backbone", "input_size", "heads")
SESSIONS_FILE = "training_sessions.json"  # one entry per run of `train` that made steps: resumes add up


@dataclass(frozen=True)
class TrainResult:
    checkpoint: str  # path prefix of the last checkpoint
    first_step: int  # 0 for a fresh run, else the step it resumed from
    last_step: int
    seconds: float  # this session's
    total_seconds: float  # every session's in this model folder, resumed ones included
    final_losses: dict[str, float]
    options: TrainOptions  # as saved in the model folder, with what the weights were initialised from


def check_resumable(model_dir: Path, options: TrainOptions) -> None:
    """Refuse to continue a run in `model_dir` whose model differs from `options`."""
    if not (model_dir / OPTIONS_FILE).exists():
        return
    saved = TrainOptions.load(model_dir)
    changed = [f"{name} {getattr(saved, name)} -> {getattr(options, name)}" for name in MODEL_SHAPING_FIELDS
               if getattr(saved, name) != getattr(options, name)]
    if changed:
        raise InstanceSegmentationError(
            f"{model_dir}: holds a run with a different model ({'; '.join(changed)}); use another --model-dir")


def training_seconds(model_dir: str | Path) -> float:
    """The training seconds of every session logged in `model_dir` (0 before the first)."""
    return _total_seconds(_sessions(Path(model_dir)))


def _total_seconds(sessions: list[dict]) -> float:
    return sum(session["seconds"] for session in sessions)


def _sessions(model_dir: Path) -> list[dict]:
    path = model_dir / SESSIONS_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else []


def record_session(model_dir: Path, first_step: int, last_step: int, seconds: float) -> float:
    """Add one training session to `model_dir`'s log; returns the training seconds of all sessions."""
    sessions = _sessions(model_dir)
    if last_step > first_step:
        sessions.append({"first_step": first_step, "last_step": last_step, "seconds": round(seconds, 1)})
        write_text_atomic(model_dir / SESSIONS_FILE, json.dumps(sessions, indent=1))
    return _total_seconds(sessions)


def checkpoint_step(checkpoint: str) -> int:
    """The step a checkpoint path prefix (`.../ckpt-1200`) was saved at."""
    return int(checkpoint.rsplit("-", 1)[-1])


def latest_checkpoint(model_dir: str | Path) -> str | None:
    import tensorflow as tf

    return tf.train.latest_checkpoint(str(model_dir))


def train(options: TrainOptions, train_records: str | Path, model_dir: str | Path, progress: bool = True,
          initialise: Callable[[object], str] | None = None,
          evaluate: Callable[[object, int, float], None] | None = None, evaluate_every: int = 0) -> TrainResult:
    """Train up to `options.steps` steps, resuming from the latest checkpoint in `model_dir` if there is one.

    A checkpoint is saved every `options.checkpoint_every` steps, at the end, and on Ctrl-C (the
    KeyboardInterrupt is then re-raised), so rerunning the same command continues where it stopped.
    A fresh run (no checkpoint yet) first calls `initialise(model)`, which loads initial weights and says
    which (`options.init_checkpoint` names the source); a resumed run keeps what its first session recorded.
    `evaluate(model, step, training_seconds)` runs every `evaluate_every` steps; its time is not training time.
    """
    import time

    import tensorflow as tf
    from official.vision.tasks.maskrcnn import MaskRCNNTask

    model_dir = Path(model_dir)
    check_resumable(model_dir, options)
    resuming = latest_checkpoint(model_dir) is not None
    if resuming and (model_dir / OPTIONS_FILE).exists():
        saved = TrainOptions.load(model_dir)
        options = dataclasses.replace(options, init_checkpoint=saved.init_checkpoint,
                                      init_restored=saved.init_restored)
    model_dir.mkdir(parents=True, exist_ok=True)
    options.save(model_dir)

    config = experiment_config(options, str(train_records))
    task = MaskRCNNTask(config.task)
    model = task.build_model()
    optimizer = task.create_optimizer(config.trainer.optimizer_config, config.runtime)
    metrics = task.build_metrics(training=True)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
    manager = tf.train.CheckpointManager(checkpoint, str(model_dir), max_to_keep=2)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).expect_partial()
        if initialise is not None:
            tqdm.write(f"resuming from {manager.latest_checkpoint}: the initial weights are not loaded again")
    elif initialise is not None:
        options = dataclasses.replace(options, init_restored=initialise(model))
        options.save(model_dir)
    first_step = int(optimizer.iterations.numpy())
    earlier_seconds = training_seconds(model_dir)

    # Model Garden's step has no Python control flow on tensors: without AutoGraph's source rewriting the first
    # step is traced several seconds sooner, the same graph.
    @tf.function(autograph=False)
    def train_step(inputs):
        return task.train_step(inputs, model, optimizer, metrics)

    def losses() -> dict[str, float]:
        return {m.name: float(m.result()) for m in metrics}

    start = time.perf_counter()
    evaluation_seconds = 0.0
    step = first_step
    reported: dict[str, float] = {}
    bar = tqdm(total=options.steps, initial=first_step, desc="training", unit="step", disable=not progress,
               dynamic_ncols=True)
    try:
        iterator = iter(task.build_inputs(config.task.train_data))
        while step < options.steps:
            train_step(next(iterator))
            step = int(optimizer.iterations.numpy())
            bar.update(step - bar.n)
            if step % 10 == 0 or step == options.steps:
                reported = losses()  # means since the last report
                if not math.isfinite(reported.get("total_loss", 0.0)):
                    raise InstanceSegmentationError(
                        f"training diverged at step {step} (loss {reported['total_loss']}): lower --learning-rate")
                bar.set_postfix(loss=f"{reported['total_loss']:.3f}", mask=f"{reported.get('mask_loss', 0):.3f}")
                for m in metrics:
                    m.reset_state()
            if step % options.checkpoint_every == 0:
                manager.save(checkpoint_number=step)
            if evaluate is not None and evaluate_every and step % evaluate_every == 0:
                evaluation_start = time.perf_counter()
                evaluate(model, step, earlier_seconds + evaluation_start - start - evaluation_seconds)
                evaluation_seconds += time.perf_counter() - evaluation_start
    except KeyboardInterrupt:
        if step > first_step:
            manager.save(checkpoint_number=step)
            record_session(model_dir, first_step, step, time.perf_counter() - start - evaluation_seconds)
            tqdm.write(f"saved a checkpoint at step {step} in {model_dir}; run the same command to resume")
        raise
    finally:
        bar.close()
    path = manager.latest_checkpoint
    if path is None or checkpoint_step(path) != step:
        path = manager.save(checkpoint_number=step)
    seconds = time.perf_counter() - start - evaluation_seconds
    total = record_session(model_dir, first_step, step, seconds)
    return TrainResult(checkpoint=path, first_step=first_step, last_step=step, seconds=seconds,
                       total_seconds=total, final_losses=reported, options=options)
