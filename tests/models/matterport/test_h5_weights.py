"""Reading matterport's Keras 2 HDF5 weight files (every layout variant, written by tests/matterport_h5.py from the
layouts recorded off the reference model), matching them by name, and what they reveal about the config."""

from __future__ import annotations

import re

import h5py
import numpy as np
import pytest
from matterport_h5 import Layout, calibrated_weights, write_matterport_h5

from object_detection_utils.errors import ModelLoadError
from object_detection_utils.models.matterport.config import PRESETS, MatterportConfig
from object_detection_utils.models.matterport.h5_weights import infer_config, match_weights, read_keras_h5

# what matterport users pass to load_weights(exclude=...) when fine-tuning; mrcnn_bbox is a reshape without weights
HEADS = ["mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_bbox", "mrcnn_mask"]
WEIGHTED_HEADS = ["mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_mask"]


def _small(layout: Layout) -> Layout:
    """The same layer and weight names with every dimension cut to at most 3: the layout, not the size, is tested."""
    groups = {name: tuple((weight, tuple(min(d, 3) for d in shape), dtype) for weight, shape, dtype in entries)
              for name, entries in layout.groups.items()}
    return Layout(layout.layer_names, groups, layout.backend, layout.keras_version)


@pytest.fixture(scope="module")
def layout() -> Layout:
    return _small(Layout.named("resnet50", 5))


@pytest.fixture(scope="module")
def weights(layout) -> dict:
    return calibrated_weights(layout, seed=7)


def _write(tmp_path, layout, weights, **options):
    return write_matterport_h5(tmp_path / "mask_rcnn.h5", layout, weights, **options)


def _assert_same(found, weights):
    assert sorted(found) == sorted(weights)
    for layer, arrays in weights.items():
        assert sorted(found[layer]) == sorted(arrays), layer
        for name, array in arrays.items():
            assert found[layer][name].dtype == np.float32
            np.testing.assert_array_equal(found[layer][name], array)


@pytest.mark.parametrize("variant", ["flat", "full"])
@pytest.mark.parametrize(("bytes_attributes", "fixed_length"), [(True, True), (True, False), (False, False)])
@pytest.mark.parametrize("chunk_attributes", [False, True])
@pytest.mark.parametrize("top_level_group", [False, True])
def test_every_file_variant_reads_back_exactly(tmp_path, layout, weights, variant, bytes_attributes, fixed_length,
                                               chunk_attributes, top_level_group):
    path = _write(tmp_path, layout, weights, variant=variant, bytes_attributes=bytes_attributes,
                  fixed_length=fixed_length, chunk_attributes=chunk_attributes, top_level_group=top_level_group)
    with h5py.File(path, "r") as file:
        group = file if variant == "flat" else file["model_weights"]
        assert ("layer_names0" in group.attrs) is chunk_attributes
        assert ("layer_names" in group.attrs) is not chunk_attributes
    found = read_keras_h5(path)
    _assert_same(found, weights)
    # the nested rpn_model group gives its inner layers; layers without weights are left out
    assert {"rpn_conv_shared", "rpn_class_raw", "rpn_bbox_pred"} <= set(found)
    assert "rpn_model" not in found and "input_image" not in found
    assert len(found) == 133
    matched = match_weights(layout.expected_weights(), found, path)
    _assert_same(matched, weights)


def test_the_resnet101_layout_reads_back_by_name(tmp_path):
    layout = _small(Layout.named("resnet101", 5))
    weights = calibrated_weights(layout, seed=1)
    found = read_keras_h5(_write(tmp_path, layout, weights, variant="full", chunk_attributes=True))
    _assert_same(found, weights)
    assert len(found) == 235 and "res4w_branch2a" in found


def test_chunked_weight_names_of_a_big_nested_group(tmp_path):
    inner = [f"inner_layer_{i:02d}" for i in range(60)]
    groups = {
        "conv1": (("conv1/kernel:0", (1, 1, 3, 2), "float32"), ("conv1/bias:0", (2,), "float32")),
        "big_model": tuple((f"{name}/{short}:0", shape, "float32") for name in inner
                           for short, shape in (("kernel", (1, 1, 2, 2)), ("bias", (2,)))),
    }
    layout = Layout(("conv1", "big_model"), groups, "tensorflow", "2.0.8")
    weights = calibrated_weights(layout, seed=3)
    path = _write(tmp_path, layout, weights, chunk_attributes=True)
    with h5py.File(path, "r") as file:
        assert "weight_names1" in file["big_model"].attrs and "weight_names" not in file["big_model"].attrs
    _assert_same(read_keras_h5(path), weights)


def test_a_variable_name_keras_made_unique_still_belongs_to_its_layer(tmp_path):
    # a model built twice in one session saves "conv1_1/kernel:0" in group conv1
    groups = {"conv1": (("conv1_1/kernel:0", (1, 1, 3, 2), "float32"), ("conv1_1/bias:0", (2,), "float32"))}
    layout = Layout(("conv1",), groups, "tensorflow", "2.0.8")
    found = read_keras_h5(_write(tmp_path, layout, calibrated_weights(layout, seed=0)))
    assert {layer: sorted(arrays) for layer, arrays in found.items()} == {"conv1": ["bias", "kernel"]}


# ---- files that are not matterport weights ----

def test_a_missing_file(tmp_path):
    with pytest.raises(ModelLoadError) as error:
        read_keras_h5(tmp_path / "nope.h5")
    assert str(error.value) == f"{tmp_path / 'nope.h5'}: no such weights file"


def test_not_an_hdf5_file(tmp_path):
    path = tmp_path / "model.h5"
    path.write_bytes(b"PK\x03\x04 a zip, not weights" * 100)
    with pytest.raises(ModelLoadError) as error:
        read_keras_h5(path)
    assert str(error.value) == f"{path}: not an HDF5 file (matterport weights are Keras .h5 files)"


@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_a_truncated_file(tmp_path, layout, weights, keep):
    path = _write(tmp_path, layout, weights)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ModelLoadError) as error:
        read_keras_h5(path)
    assert str(error.value) == f"{path}: damaged or truncated HDF5 file; copy or download it again"


def test_an_hdf5_file_without_keras_weights(tmp_path):
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as file:
        file["images"] = np.zeros((2, 2))
        file.create_group("model_weights")
    with pytest.raises(ModelLoadError) as error:
        read_keras_h5(path)
    assert str(error.value) == f"{path}: an HDF5 file without Keras 2 layer weights (no 'layer_names' attribute)"


def test_a_listed_layer_that_is_absent(tmp_path, layout, weights):
    path = _write(tmp_path, layout, weights)
    with h5py.File(path, "a") as file:
        del file["bn_conv1"]
    with pytest.raises(ModelLoadError) as error:
        read_keras_h5(path)
    assert str(error.value) == f"{path}: damaged Keras weights file (layer 'bn_conv1' is listed but absent)"


def test_a_listed_weight_that_is_absent(tmp_path, layout, weights):
    path = _write(tmp_path, layout, weights, variant="full")
    with h5py.File(path, "a") as file:
        del file["model_weights/rpn_model/rpn_class_raw/bias:0"]
    with pytest.raises(ModelLoadError) as error:
        read_keras_h5(path)
    assert str(error.value) == (f"{path}: damaged Keras weights file (weight 'rpn_class_raw/bias:0' of layer "
                                "'rpn_model' is listed but absent)")


def test_two_weights_with_one_name(tmp_path):
    groups = {"conv1": (("conv1/kernel:0", (1, 1, 3, 2), "float32"), ("conv1/kernel:1", (1, 1, 3, 2), "float32"))}
    layout = Layout(("conv1",), groups, "tensorflow", "2.0.8")
    # the writer names arrays by layer and short name, so both entries hold the same array
    path = _write(tmp_path, layout, {"conv1": {"kernel": np.zeros((1, 1, 3, 2), np.float32)}})
    with pytest.raises(ModelLoadError) as error:
        read_keras_h5(path)
    assert str(error.value) == f"{path}: layer 'conv1' has two weights named 'kernel'"


# ---- matching by name ----

def test_missing_layers_are_listed_a_few_with_a_count(tmp_path, layout, weights):
    path = tmp_path / "w.h5"
    found = {layer: arrays for layer, arrays in weights.items() if not layer.startswith("res5")}
    missing = sorted(layer for layer in weights if layer.startswith("res5"))
    with pytest.raises(ModelLoadError) as error:
        match_weights(layout.expected_weights(), found, path)
    assert str(error.value) == (f"{path}: missing {len(missing)} layers the model needs: "
                                f"{', '.join(missing[:5])} and {len(missing) - 5} more")


def test_a_missing_weight_of_a_present_layer(tmp_path, layout, weights):
    found = {**weights, "fpn_c5p5": {"kernel": weights["fpn_c5p5"]["kernel"]}}
    with pytest.raises(ModelLoadError) as error:
        match_weights(layout.expected_weights(), found, tmp_path / "w.h5")
    assert str(error.value) == f"{tmp_path / 'w.h5'}: missing 1 layer the model needs: fpn_c5p5/bias"


def test_extra_layers_and_shape_mismatches_one_line_each(tmp_path, layout, weights):
    expected = layout.expected_weights()
    found = {**weights, "mrcnn_class_logits": {"kernel": np.zeros((3, 81), np.float32),
                                               "bias": np.zeros(81, np.float32)},
             "my_extra_head": {"kernel": np.zeros(2, np.float32)}}
    with pytest.raises(ModelLoadError) as error:
        match_weights(expected, found, tmp_path / "w.h5")
    assert str(error.value).splitlines() == [
        f"{tmp_path / 'w.h5'}: 1 layer in the file that the model does not have: my_extra_head (exclude them to skip)",
        (f"{tmp_path / 'w.h5'}: 2 shape mismatches: mrcnn_class_logits/kernel: file (3, 81) vs model (3, 3); "
         "mrcnn_class_logits/bias: file (81,) vs model (3,)"),
    ]


def test_one_shape_mismatch_is_one_line(tmp_path, layout, weights):
    found = {**weights, "mrcnn_class_logits": {**weights["mrcnn_class_logits"], "bias": np.zeros(81, np.float32)}}
    with pytest.raises(ModelLoadError) as error:
        match_weights(layout.expected_weights(), found, tmp_path / "w.h5")
    assert str(error.value) == f"{tmp_path / 'w.h5'}: 1 shape mismatch: mrcnn_class_logits/bias: file (81,) vs model (3,)"


def test_excluded_heads_are_neither_missing_nor_extra_nor_returned(tmp_path, layout, weights):
    expected = layout.expected_weights()
    # a COCO file for a model with other heads, as when fine-tuning
    found = {**weights, **{head: {name: np.zeros(tuple(d + 1 for d in array.shape), np.float32)
                                  for name, array in weights[head].items()} for head in WEIGHTED_HEADS},
             "coco_only_layer": {"bias": np.zeros(2, np.float32)}}
    del found["mrcnn_mask"]
    del expected["mrcnn_bbox_fc"]
    matched = match_weights(expected, found, tmp_path / "w.h5", exclude=[*HEADS, "coco_only_layer"])
    assert sorted(matched) == sorted(set(weights) - set(HEADS))
    _assert_same(matched, {layer: arrays for layer, arrays in weights.items() if layer not in HEADS})


def test_exclude_takes_regular_expressions_matched_against_whole_names(tmp_path, layout, weights):
    expected = layout.expected_weights()
    found = {layer: arrays for layer, arrays in weights.items() if not layer.startswith("mrcnn_")}
    matched = match_weights(expected, found, tmp_path / "w.h5", exclude=[r"mrcnn_.*"])
    assert not any(layer.startswith("mrcnn_") for layer in matched)
    # "mrcnn_mask" alone does not exclude mrcnn_mask_conv1: names match whole
    with pytest.raises(ModelLoadError, match=re.escape("missing 14 layers the model needs: mrcnn_bbox_fc, mrcnn_class_bn1, "
                                                       "mrcnn_class_bn2, mrcnn_class_conv1, mrcnn_class_conv2 and 9 more")):
        match_weights(expected, found, tmp_path / "w.h5", exclude=["mrcnn_mask", "mrcnn_class_logits"])


def test_an_exclude_that_does_not_compile(tmp_path, layout, weights):
    with pytest.raises(ModelLoadError) as error:
        match_weights(layout.expected_weights(), weights, tmp_path / "w.h5", exclude=["mrcnn_(bbox"])
    assert str(error.value) == (f"{tmp_path / 'w.h5'}: exclude 'mrcnn_(bbox' is not a layer name or regular "
                                "expression (missing ), unterminated subpattern at position 6)")


# ---- what the weights reveal ----

def _found(backbone: str, num_classes: int = 5) -> dict:
    """Zero-cost arrays with the full shapes of a recorded layout (nothing is allocated)."""
    expected = Layout.named(backbone, 5).expected_weights()
    expected["mrcnn_class_logits"] = {"kernel": (1024, num_classes), "bias": (num_classes,)}
    return {layer: {name: np.broadcast_to(np.float32(0), shape) for name, shape in shapes.items()}
            for layer, shapes in expected.items()}


@pytest.mark.parametrize("backbone", ["resnet50", "resnet101"])
def test_without_a_config_the_weights_fill_in_matterports_defaults(tmp_path, backbone):
    config = infer_config(_found(backbone), None, tmp_path / "w.h5")
    assert config == MatterportConfig(NUM_CLASSES=5, BACKBONE=backbone)


def test_sizes_the_weights_reveal(tmp_path):
    found = {
        "res4a_branch2a": {"kernel": np.zeros((1, 1, 2, 2))},
        "mrcnn_class_logits": {"bias": np.zeros(3)},
        "mrcnn_class_conv1": {"kernel": np.broadcast_to(np.float32(0), (7, 7, 128, 512))},
        "fpn_c5p5": {"kernel": np.broadcast_to(np.float32(0), (1, 1, 2048, 128))},
        "rpn_class_raw": {"kernel": np.zeros((1, 1, 512, 6))},
    }
    assert infer_config(found, None, tmp_path / "w.h5") == MatterportConfig(
        NUM_CLASSES=3, BACKBONE="resnet50", FPN_CLASSIF_FC_LAYERS_SIZE=512, TOP_DOWN_PYRAMID_SIZE=128)


def test_a_matching_config_is_returned_as_given(tmp_path):
    config = PRESETS["balloon"].replace(NUM_CLASSES=5, CLASS_NAMES=None)
    assert infer_config(_found("resnet101"), config, tmp_path / "w.h5") is config


def test_a_config_that_disagrees_with_the_weights_is_one_line(tmp_path):
    with pytest.raises(ModelLoadError) as error:
        infer_config(_found("resnet50"), PRESETS["coco"], tmp_path / "w.h5")
    assert str(error.value) == (f"{tmp_path / 'w.h5'}: the config does not match the weights: NUM_CLASSES: config 81, "
                                "weights 5 (layer mrcnn_class_logits); BACKBONE: config 'resnet101', weights 'resnet50' "
                                "(layers res4*)")


def test_anchor_ratios_against_the_rpn(tmp_path):
    found = _found("resnet101")
    with pytest.raises(ModelLoadError) as error:
        infer_config(found, MatterportConfig(NUM_CLASSES=5, RPN_ANCHOR_RATIOS=(0.5, 1, 2, 4)), tmp_path / "w.h5")
    assert str(error.value) == (f"{tmp_path / 'w.h5'}: the config does not match the weights: RPN_ANCHOR_RATIOS: "
                                "config 4 ratios, weights 3 anchors per location (layer rpn_class_raw)")
    found["rpn_class_raw"] = {"kernel": np.zeros((1, 1, 512, 10)), "bias": np.zeros(10)}
    with pytest.raises(ModelLoadError) as error:
        infer_config(found, None, tmp_path / "w.h5")
    assert str(error.value) == (f"{tmp_path / 'w.h5'}: the weights have 5 anchors per location, matterport's default "
                                "RPN_ANCHOR_RATIOS [0.5, 1, 2] give 3: give a config with the training "
                                "RPN_ANCHOR_RATIOS")
    config = MatterportConfig(NUM_CLASSES=5, RPN_ANCHOR_RATIOS=(0.25, 0.5, 1, 2, 4))
    assert infer_config(found, config, tmp_path / "w.h5") is config


def test_excluded_heads_reveal_nothing(tmp_path):
    config = PRESETS["balloon"]
    assert infer_config(_found("resnet101", num_classes=81), config, tmp_path / "w.h5", exclude=HEADS) is config


def test_a_file_read_then_checked_against_a_preset(tmp_path):
    layout = Layout.named("resnet50", 5)
    small = _small(layout)
    path = _write(tmp_path, small, calibrated_weights(small, seed=2), variant="full")
    found = read_keras_h5(path)
    # the small file keeps names, not sizes: its class count reads as 3
    with pytest.raises(ModelLoadError) as error:
        infer_config(found, PRESETS["nucleus"], path)
    assert str(error.value) == (f"{path}: the config does not match the weights: NUM_CLASSES: config 2, weights 3 "
                                "(layer mrcnn_class_logits); FPN_CLASSIF_FC_LAYERS_SIZE: config 1024, weights 3 (layer "
                                "mrcnn_class_conv1); TOP_DOWN_PYRAMID_SIZE: config 256, weights 3 (layer fpn_c5p5); "
                                "RPN_ANCHOR_RATIOS: config 3 ratios, weights 1 anchor per location (layer rpn_class_raw)")
