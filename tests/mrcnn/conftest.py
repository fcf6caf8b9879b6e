"""Fixtures of the drop-in `mrcnn` tests: the golden case they are held to, and matterport's own code."""

from __future__ import annotations

import hashlib
import json
import sys
import types
import warnings
from pathlib import Path

import matterport_code
import numpy as np
import pytest
from matplotlib import cbook
from matplotlib import image as mpimage
from matterport_h5 import golden_masks, load_golden

# The golden case whose weights are the session's `matterport_weights` (resnet50, 5 classes, seed 15): 320 px, so
# each run of matterport's code costs seconds, not the 1024 px COCO size (test_parity's resnet101_coco case).
GOLDEN_CASE = "resnet50_square"


@pytest.fixture(scope="session")
def golden() -> dict[str, np.ndarray]:
    """matterport's own detections on grace_hopper.jpg, masks unpacked under "masks"."""
    found = load_golden(GOLDEN_CASE)
    assert int(found["seed"]) == 15
    return {**found, "masks": golden_masks(found)}


@pytest.fixture(scope="session")
def golden_settings(golden) -> dict:
    """The golden case's settings as a matterport Config subclass sets them (one picture per batch)."""
    settings = {key: value for key, value in json.loads(str(golden["config"])).items() if key != "CLASS_NAMES"}
    return {**settings, "GPU_COUNT": 1, "IMAGES_PER_GPU": 1}


@pytest.fixture(scope="session")
def golden_config(golden_settings) -> type:
    """A matterport Config subclass with the golden case's settings."""
    from object_detection_utils.mrcnn.config import Config

    return type("GoldenConfig", (Config,), golden_settings)


@pytest.fixture(scope="session")
def golden_model(golden_config, matterport_weights):
    """An inference MaskRCNN of the golden case on the session's weights, built once for every test here."""
    from object_detection_utils.mrcnn.model import MaskRCNN

    model = MaskRCNN(mode="inference", config=golden_config(), model_dir=".")
    model.load_weights(matterport_weights, by_name=True)
    return model


@pytest.fixture(scope="session")
def picture(golden) -> np.ndarray:
    """grace_hopper.jpg as the goldens were made from it (600x512 RGB)."""
    image = mpimage.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    assert hashlib.sha256(image.tobytes()).hexdigest() == str(golden["picture_sha256"]), "decoded differently"
    return image


@pytest.fixture(scope="session")
def grace_hopper_jpg() -> Path:
    return Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


@pytest.fixture(scope="session")
def matterport_source(tmp_path_factory) -> matterport_code.MatterportCode:
    found = matterport_code.fetch(tmp_path_factory.mktemp("matterport_code"))
    if isinstance(found, str):
        pytest.skip(found)
    return found


@pytest.fixture(scope="session")
def matterport_samples(matterport_source) -> Path:
    """samples/ of a matterport checkout (demo.ipynb, coco, balloon, nucleus)."""
    if not matterport_source.has_samples:
        pytest.skip(f"matterport's samples/ are not in {matterport_source.origin}: set {matterport_code.ENV} to a "
                    "checkout of github.com/matterport/Mask_RCNN")
    pytest.importorskip("skimage", reason="matterport's samples read and write pictures with scikit-image")
    return matterport_source.root / "samples"


@pytest.fixture(scope="session")
def matterport_package(matterport_source) -> types.SimpleNamespace:
    """matterport's own mrcnn.config, .utils and .visualize (not .model: it needs Keras 2), imported from the
    fetched code and taken out of sys.modules again, so that `mrcnn` stays unknown to every other test."""
    pytest.importorskip("skimage", reason="matterport's mrcnn.utils and .visualize import scikit-image")
    saved_path = sys.path[:]
    stubbed = "IPython" not in sys.modules and _stub_ipython()
    sys.path.insert(0, str(matterport_source.root))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # its distutils.version import
            from mrcnn import config, utils, visualize
    finally:
        sys.path[:] = saved_path
        for name in [name for name in sys.modules if name == "mrcnn" or name.startswith("mrcnn.")]:
            del sys.modules[name]
        if stubbed:
            for name in ("IPython", "IPython.display"):
                sys.modules.pop(name, None)
    return types.SimpleNamespace(config=config, utils=utils, visualize=visualize, origin=matterport_source.origin)


def _stub_ipython() -> bool:
    """matterport's visualize imports IPython.display for its HTML tables only (display_table): an empty stand-in
    lets it import where IPython is not installed; nothing drawn here touches it."""
    try:
        import IPython.display  # noqa: F401
        return False
    except ImportError:
        package, display = types.ModuleType("IPython"), types.ModuleType("IPython.display")
        package.display = display
        sys.modules.update({"IPython": package, "IPython.display": display})
        return True


SCORE_TOLERANCE = 1e-5  # boxes, class ids and mask pixels are held exactly


@pytest.fixture(scope="session")
def assert_golden(golden):
    """`assert_golden(result)`: a matterport detect() dict equals matterport's own detections: the same boxes,
    class ids and mask pixels in the same order, scores within SCORE_TOLERANCE."""

    def check(result: dict[str, np.ndarray]) -> None:
        assert set(result) == {"rois", "class_ids", "scores", "masks"}
        np.testing.assert_array_equal(result["rois"], golden["rois"])
        np.testing.assert_array_equal(result["class_ids"], golden["class_ids"])
        np.testing.assert_allclose(result["scores"], golden["scores"], rtol=0, atol=SCORE_TOLERANCE)
        assert result["masks"].shape == golden["masks"].shape
        assert (result["masks"] != golden["masks"]).sum() == 0
        assert (result["rois"].dtype, result["class_ids"].dtype, result["scores"].dtype, result["masks"].dtype) == (
            np.int32, np.int32, np.float32, bool)

    return check
