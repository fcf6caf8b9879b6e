"""Our exports' options file (`training_options.json`): the training options every export carries, and the Model
Garden `maskrcnn_resnetfpn_coco` experiment they turn into.

The contract between training (which writes it) and the back ends (which rebuild an export's model from it);
Model Garden is imported only by `experiment_config`."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import InstanceSegmentationError

BACKBONE_DEPTHS = (10, 18, 26, 34, 50, 101, 152)
OPTIONS_FILE = "training_options.json"
NMS_VERSIONS = ("batched", "v1", "v2")
# What exports made before the test-time options existed ran with (Model Garden's defaults): an options file
# without them gets these, so rebuilding its model gives what its SavedModel computes.
LEGACY_TEST_OPTIONS = {"nms": "v2", "mask_detections": 100}


@dataclass(frozen=True)
class TrainOptions:
    """What a user picks for a training run (everything else follows Model Garden's COCO experiment).

    `heads="zoo"` keeps Model Garden's COCO head sizes (256-channel FPN, 4-conv heads: the compute of a
    detection-zoo model); `heads="light"` shrinks them for small datasets and a CPU.
    """

    num_classes: int  # the largest category id + 1 (id 0 is the background)
    backbone: str = "resnet18"
    input_size: int = 128
    batch_size: int = 8
    steps: int = 1000
    learning_rate: float = 0.02
    warmup_steps: int = 100
    heads: str = "light"
    augment: bool = True
    checkpoint_every: int = 100
    freeze: str = ""  # "backbone": its weights (and batch-norm statistics) stay as initialised
    # Where the weights came from before step 0 (init_checkpoint.py); "" for random weights.
    init_checkpoint: str = ""  # the source in words, e.g. "models/shapes (our export, 5000 steps)"
    init_restored: str = ""  # which parts were restored, e.g. "backbone"
    # Test-time choices baked into the export, CPU-friendly by default (docs/PERFORMANCE.md has their cost and AP).
    test_proposals: int = 0  # proposals the box head sees; 0: 300 with zoo heads (as the TF1 zoo), 100 with light
    nms: str = "batched"  # detection NMS: "batched" (CombinedNonMaxSuppression), or Model Garden's "v1", "v2"
    mask_detections: int = 100  # detections kept at most, each with a mask

    def __post_init__(self) -> None:
        if backbone_depth(self.backbone) not in BACKBONE_DEPTHS:
            raise InstanceSegmentationError(
                f"unknown backbone {self.backbone!r}; choose resnet{', resnet'.join(map(str, BACKBONE_DEPTHS))}")
        if self.heads not in ("zoo", "light"):
            raise InstanceSegmentationError(f"heads must be 'zoo' or 'light', not {self.heads!r}")
        if self.input_size < 64 or self.input_size % 64:
            raise InstanceSegmentationError(f"input size must be a multiple of 64, not {self.input_size}")
        if self.num_classes < 2:
            raise InstanceSegmentationError("need at least one object class (num_classes counts the background)")
        if self.freeze not in ("", "backbone"):
            raise InstanceSegmentationError(f"freeze must be 'backbone' or nothing, not {self.freeze!r}")
        if self.nms not in NMS_VERSIONS:
            raise InstanceSegmentationError(f"nms must be one of {', '.join(NMS_VERSIONS)}, not {self.nms!r}")
        if self.test_proposals < 0 or self.mask_detections < 1:
            raise InstanceSegmentationError("test proposals must be 0 (the heads' default) or more, and mask "
                                            "detections 1 or more")

    @property
    def proposals_at_test(self) -> int:
        """Proposals the box head sees in an export."""
        return self.test_proposals or (300 if self.heads == "zoo" else 100)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> TrainOptions:
        values = json.loads(text)
        if "nms" not in values:  # written before the test-time options: Model Garden's defaults
            legacy = {**LEGACY_TEST_OPTIONS, "test_proposals": 1000 if values.get("heads") == "zoo" else 0}
            values = {**legacy, **values}
        return cls(**values)

    def save(self, model_dir: Path) -> None:
        from ..io.atomic import write_text_atomic

        write_text_atomic(Path(model_dir) / OPTIONS_FILE, self.to_json())

    @classmethod
    def load(cls, model_dir: str | Path) -> TrainOptions:
        path = Path(model_dir) / OPTIONS_FILE
        try:
            return cls.from_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InstanceSegmentationError(f"{model_dir}: not a training folder (no {OPTIONS_FILE})") from None
        except (ValueError, TypeError) as error:
            raise InstanceSegmentationError(f"{path}: unreadable training options ({error})") from None


def backbone_depth(backbone: str) -> int:
    """18 for "resnet18" (or "18")."""
    text = backbone.lower().removeprefix("resnet").removeprefix("-")
    return int(text) if text.isdigit() else -1


def experiment_config(options: TrainOptions, train_records: str = ""):
    """The Model Garden ExperimentConfig for `options` (float32, one CPU/GPU replica).

    Its `init_checkpoint` stays empty: initial weights are restored by init_checkpoint.py, which can also
    re-initialise the class-specific layers when the classes differ.
    """
    from official.core import exp_factory

    config = exp_factory.get_exp_config("maskrcnn_resnetfpn_coco")
    size = options.input_size
    light = options.heads == "light"
    overrides = {
        "runtime": {"mixed_precision_dtype": "float32", "enable_xla": False},
        "task": {
            "init_checkpoint": None,
            "annotation_file": None,
            "use_coco_metrics": False,
            "freeze_backbone": options.freeze == "backbone",
            "losses": {"l2_weight_decay": 4e-5},
            "model": {
                "num_classes": options.num_classes,
                "input_size": [size, size, 3],
                "backbone": {"resnet": {"model_id": backbone_depth(options.backbone)}},
                # Smaller pictures get smaller anchors: 16..256 px at 128 px input, the zoo's 32..512 at 1024.
                "anchor": {"anchor_size": 4.0 if size <= 256 else 8.0},
                "norm_activation": {"use_sync_bn": False, "norm_momentum": 0.99 if light else 0.997},
                            },
            "train_data": {
                "input_path": train_records,
                "global_batch_size": options.batch_size,
                "dtype": "float32",
                "shuffle_buffer_size": 1000,
                "parser": {
                    "aug_rand_hflip": options.augment,
                    "aug_scale_min": 0.8 if options.augment else 1.0,
                    "aug_scale_max": 1.25 if options.augment else 1.0,
                },
            },
            "validation_data": {"input_path": "", "dtype": "float32"},
        },
        "trainer": {
            "train_steps": options.steps,
            "optimizer_config": {
                "optimizer": {"type": "sgd", "sgd": {"momentum": 0.9}},
                "learning_rate": {"type": "cosine", "cosine": {
                    "initial_learning_rate": options.learning_rate, "decay_steps": options.steps}},
                "warmup": {"type": "linear", "linear": {
                    "warmup_steps": min(options.warmup_steps, max(options.steps - 1, 0)),
                    "warmup_learning_rate": options.learning_rate / 10}},
            },
        },
    }
    if light:
        # A CPU-sized model: the heads dominate the cost of a step at small inputs, so they shrink the most.
        overrides["task"]["model"].update({
            "decoder": {"fpn": {"num_filters": 64}},
            "rpn_head": {"num_filters": 64},
            "detection_head": {"num_convs": 0, "num_fcs": 2, "fc_dims": 256, "num_filters": 64},
            "mask_head": {"num_convs": 2, "num_filters": 64},
            "roi_generator": {"num_proposals": 200, "pre_nms_top_k": 1000, "test_pre_nms_top_k": 500},
            "roi_sampler": {"num_sampled_rois": 64},
            "mask_sampler": {"num_sampled_masks": 16},
        })
        overrides["task"]["train_data"]["parser"].update({"rpn_batch_size_per_im": 128, "mask_crop_size": 56})
    model = overrides["task"]["model"]
    model.setdefault("roi_generator", {})["test_num_proposals"] = options.proposals_at_test
    model["detection_generator"] = {"nms_version": options.nms, "max_num_detections": options.mask_detections}
    config.override(overrides, is_strict=True)
    return config
