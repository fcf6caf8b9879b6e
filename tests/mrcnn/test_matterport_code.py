"""matterport's own code (see tests/matterport_code.py for where it is fetched from), run on our package with only
its import lines changed: the demo notebook's cells, the balloon and nucleus samples' detection, and its
visualize and utils beside ours on the same detections."""

from __future__ import annotations

import shutil
import sys
import types
import warnings

import matplotlib.pyplot as plt
import matterport_code
import numpy as np
import pytest
from PIL import Image

from object_detection_utils.mrcnn import model as modellib
from object_detection_utils.mrcnn import utils, visualize
from object_detection_utils.mrcnn.config import Config


@pytest.fixture(autouse=True)
def _restored(monkeypatch):
    """matterport's scripts append to sys.path, change the working folder and draw figures: undone after each."""
    monkeypatch.setattr(sys, "path", sys.path[:])
    yield
    plt.close("all")


@pytest.fixture
def model(golden_model) -> modellib.MaskRCNN:
    """What the samples' command lines build: an inference MaskRCNN on the weights (the golden case's config)."""
    return golden_model


def test_the_demo_notebook_runs_with_its_imports_changed(matterport_samples, matterport_weights, golden_settings,
                                                        grace_hopper_jpg, assert_golden, tmp_path, monkeypatch):
    # the notebook's folders: ROOT_DIR = "../" of samples/, with the weights and images/ it expects there
    (tmp_path / "samples").mkdir()
    (tmp_path / "images").mkdir()
    shutil.copy(grace_hopper_jpg, tmp_path / "images")
    (tmp_path / "mask_rcnn_coco.h5").symlink_to(matterport_weights)
    monkeypatch.chdir(tmp_path / "samples")
    # `import coco` finds matterport's samples/coco/coco.py; its CocoConfig is given the golden case's sizes so
    # that the notebook runs at 320 px (COCO's own 1024 px is test_parity's resnet101_coco case)
    coco = matterport_code.load_script(matterport_samples / "coco" / "coco.py", "coco")
    small = types.ModuleType("coco")
    small.__dict__.update(coco.__dict__)
    small.CocoConfig = type("CocoConfig", (coco.CocoConfig,), golden_settings)
    monkeypatch.setitem(sys.modules, "coco", small)

    namespace: dict = {"__name__": "__main__"}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "FigureCanvasAgg is non-interactive")
        for cell in matterport_code.notebook_cells(matterport_samples / "demo.ipynb"):
            exec(cell, namespace)  # noqa: S102 (matterport's notebook, the point of the test)

    assert namespace["file_names"] == ["grace_hopper.jpg"]
    assert_golden(namespace["r"])
    axes = plt.gcf().axes[0]
    assert len(axes.patches) == len(namespace["r"]["rois"])  # one dashed box per detection


def test_balloon_detect_and_color_splash(matterport_samples, model, golden, picture, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    balloon = matterport_code.load_script(matterport_samples / "balloon" / "balloon.py", "balloon")
    path = tmp_path / "grace_hopper.png"
    Image.fromarray(picture).save(path)
    # detect_and_color_splash reads the picture from the command line's `args`, a global of the script
    balloon.args = types.SimpleNamespace(image=str(path), video=None, command="splash")

    balloon.detect_and_color_splash(model, image_path=str(path))

    splashes = sorted(tmp_path.glob("splash_*.png"))
    assert len(splashes) == 1
    splash = np.asarray(Image.open(splashes[0]))
    np.testing.assert_array_equal(splash, balloon.color_splash(picture, golden["masks"]))
    assert (splash != balloon.color_splash(picture, golden["masks"][..., :0])).any()  # colour where masks are


def test_nucleus_detect_writes_matterports_submission(matterport_samples, model, golden, picture, tmp_path,
                                                     monkeypatch):
    (tmp_path / "samples" / "nucleus").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "samples" / "nucleus")  # the script's ROOT_DIR is "../../" of it
    nucleus = matterport_code.load_script(matterport_samples / "nucleus" / "nucleus.py", "nucleus")

    class GoldenClasses(nucleus.NucleusDataset):
        """The sample's dataset, naming the golden weights' 5 classes where nucleus has 2 (its display_instances
        looks each detected class up in dataset.class_names)."""

        def load_nucleus(self, dataset_dir, subset):
            super().load_nucleus(dataset_dir, subset)
            for class_id, name in enumerate(("tie", "cup", "chair"), start=2):
                self.add_class("nucleus", class_id, name)

    nucleus.NucleusDataset = GoldenClasses
    images = tmp_path / "dataset" / "stage1_test" / "grace_hopper" / "images"
    images.mkdir(parents=True)
    Image.fromarray(picture).save(images / "grace_hopper.png")

    nucleus.detect(model, str(tmp_path / "dataset"), "stage1_test")

    submissions = list((tmp_path / "results" / "nucleus").glob("submit_*"))
    assert len(submissions) == 1
    submitted = (submissions[0] / "submit.csv").read_text()
    expected = nucleus.mask_to_rle("grace_hopper", golden["masks"], golden["scores"])
    assert submitted == "ImageId,EncodedPixels\n" + expected
    assert submitted.count("\n") > 10
    assert (submissions[0] / "grace_hopper.png").stat().st_size > 0


def test_the_samples_configs_are_our_presets(matterport_samples, tmp_path, monkeypatch):
    from object_detection_utils.models.matterport import PRESETS

    monkeypatch.chdir(tmp_path)
    nucleus = matterport_code.load_script(matterport_samples / "nucleus" / "nucleus.py", "nucleus")
    coco = matterport_code.load_script(matterport_samples / "coco" / "coco.py", "coco")
    demo = type("InferenceConfig", (coco.CocoConfig,), {"GPU_COUNT": 1, "IMAGES_PER_GPU": 1})
    for config, preset in ((nucleus.NucleusInferenceConfig(), "nucleus"), (demo(), "coco")):
        assert modellib.to_matterport_config(config) == PRESETS[preset].replace(CLASS_NAMES=None)


def _drawn(axes) -> dict:
    """What a display_instances figure shows: boxes, captions, the picture with its masks, limits and title."""
    from matplotlib.patches import Rectangle

    return {
        "boxes": [(p.get_xy(), p.get_width(), p.get_height(), p.get_linestyle(), p.get_linewidth(), p.get_alpha(),
                   tuple(p.get_edgecolor())) for p in axes.patches if isinstance(p, Rectangle)],
        "captions": [(t.get_position(), t.get_text(), t.get_color(), t.get_fontsize()) for t in axes.texts],
        "limits": (axes.get_xlim(), axes.get_ylim(), axes.get_title()),
    }


SHOWN = 16  # of the golden's 56 detections: matterport draws each of a mask's many outlines as its own patch


@pytest.mark.parametrize("options", [{}, {"show_bbox": False, "captions": [f"#{i}" for i in range(SHOWN)]}],
                         ids=["defaults", "captions-no-boxes"])
def test_display_instances_draws_what_matterports_draws(matterport_package, golden, picture, options):
    names = ["BG", "person", "tie", "cup", "chair"]
    rois, masks, class_ids, scores = (golden[key][..., :SHOWN] if key == "masks" else golden[key][:SHOWN]
                                      for key in ("rois", "masks", "class_ids", "scores"))
    colors = visualize.random_colors(SHOWN)  # the same colours for both: the drawing is compared, not the draw
    drawn = []
    for module in (matterport_package.visualize, visualize):
        _, axes = plt.subplots(1, figsize=(6, 6))
        module.display_instances(picture, rois, masks, class_ids, names, scores, title="golden", ax=axes,
                                 colors=colors, **options)
        drawn.append((_drawn(axes), axes.images[0].get_array()))
    (theirs, their_pixels), (ours, our_pixels) = drawn
    assert ours == theirs
    assert len(ours["boxes"]) == (0 if options else SHOWN) and len(ours["captions"]) == SHOWN
    np.testing.assert_array_equal(our_pixels, their_pixels)
    assert (our_pixels != picture).any(axis=-1).sum() == masks.any(axis=-1).sum()


def test_apply_mask_and_utils_match_matterports(matterport_package, golden, picture):
    theirs, ours = matterport_package.utils, utils
    mask = golden["masks"][..., 0]
    for dtype in (np.uint8, np.uint32):
        expected = matterport_package.visualize.apply_mask(picture.astype(dtype), mask, (0.2, 0.7, 1.0), 0.3)
        np.testing.assert_array_equal(visualize.apply_mask(picture.astype(dtype), mask, (0.2, 0.7, 1.0), 0.3),
                                      expected)
    corner = picture[:150, :128]  # scaled up by 2
    cases = [(corner, "square", (256, 320)), (corner, "pad64", (256, None)), (corner, "none", (None, None))]
    if hasattr(theirs, "resize"):  # matterport's later code, which turns scikit-image's anti-aliasing off as ours
        cases.append((picture, "square", (256, 320)))  # the PyPI snapshot of 2018 predates it: it smooths shrinking
    for image, mode, sizes in cases:
        want = theirs.resize_image(image, *sizes, mode=mode)
        got = ours.resize_image(image, *sizes, mode=mode)
        np.testing.assert_array_equal(got[0], want[0])
        assert got[1:] == tuple(want[1:])
    np.testing.assert_array_equal(ours.extract_bboxes(golden["masks"]), theirs.extract_bboxes(golden["masks"]))
    masks = golden["masks"][..., :8]
    np.testing.assert_array_equal(ours.compute_overlaps_masks(masks, golden["masks"]),
                                  theirs.compute_overlaps_masks(masks, golden["masks"]))


def test_config_display_prints_every_line_matterports_prints(matterport_package, capsys):
    settings = {"NAME": "balloon", "NUM_CLASSES": 2, "IMAGES_PER_GPU": 1, "DETECTION_MIN_CONFIDENCE": 0.9}
    type("Theirs", (matterport_package.config.Config,), settings)().display()
    theirs = set(capsys.readouterr().out.splitlines())
    type("Ours", (Config,), settings)().display()
    ours = set(capsys.readouterr().out.splitlines())
    assert theirs <= ours, sorted(theirs - ours)
    # what newer matterport versions added is all that ours has beyond an older one's
    assert {line.split()[0] for line in ours - theirs} <= {
        "COMPUTE_BACKBONE_SHAPE", "FPN_CLASSIF_FC_LAYERS_SIZE", "IMAGE_CHANNEL_COUNT", "PRE_NMS_LIMIT"}
