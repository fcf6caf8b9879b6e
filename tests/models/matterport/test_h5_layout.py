"""Our matterport weight-file writer (tests/matterport_h5.py) against the structure of Keras 2's own files.

The structure_*.json goldens describe the files that Keras 2.15 itself wrote for matterport's resnet50 model
(save_weights, model.save, and save_weights with chunked attributes); writer_proof_*.json records that
make_goldens.py found no difference between those files and ours, structure or values.
"""

from __future__ import annotations

import json

import h5py
import matterport_h5 as mh5
import numpy as np
import pytest

SEED = 15
VARIANTS = {
    "flat": {"variant": "flat"},
    "full": {"variant": "full"},
    "chunked": {"variant": "flat", "chunk_attributes": True},
}


@pytest.fixture(scope="module")
def layout() -> mh5.Layout:
    return mh5.Layout.named("resnet50", 5)


@pytest.fixture(scope="module")
def weights(layout: mh5.Layout) -> dict[str, dict[str, np.ndarray]]:
    return mh5.calibrated_weights(layout, SEED)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_writer_matches_keras_structure(name, layout, weights, tmp_path) -> None:
    path = mh5.write_matterport_h5(tmp_path / f"{name}.h5", layout, weights, **VARIANTS[name])
    keras = json.loads((mh5.GOLDENS / f"structure_resnet50_{name}.json").read_text())
    assert mh5.diff_descriptions(mh5.describe_h5(path), keras) == []


def test_reference_run_found_no_difference() -> None:
    for backbone in ("resnet50", "resnet101"):
        proof = json.loads((mh5.GOLDENS / f"writer_proof_{backbone}.json").read_text())
        assert proof == {"flat": [], "full": [], "chunked": []}, backbone


def test_keras_chunks_layer_names(layout, weights, tmp_path) -> None:
    path = mh5.write_matterport_h5(tmp_path / "chunked.h5", layout, weights, chunk_attributes=True)
    with h5py.File(path, "r") as f:
        assert "layer_names" not in f.attrs
        chunks = [f.attrs[f"layer_names{i}"] for i in range(3)]
        assert "layer_names3" not in f.attrs
        assert [n.decode() for chunk in chunks for n in chunk] == list(layout.layer_names)
        assert {chunk.dtype.str for chunk in chunks} == {f"|S{max(len(n) for n in layout.layer_names)}"}


def test_full_save_nests_the_flat_layout(layout, weights, tmp_path) -> None:
    flat = mh5.describe_h5(mh5.write_matterport_h5(tmp_path / "flat.h5", layout, weights))
    full = mh5.describe_h5(mh5.write_matterport_h5(tmp_path / "full.h5", layout, weights, variant="full"))
    nested = {
        key.removeprefix("model_weights/"): value for key, value in full.items() if key.startswith("model_weights")
    }
    nested["/"] = nested.pop("model_weights")
    assert nested == flat
    assert sorted(full["/"]["attrs"]) == ["backend", "keras_version", "model_config"]


def test_rpn_model_group_holds_the_inner_layers(layout, weights, tmp_path) -> None:
    path = mh5.write_matterport_h5(tmp_path / "flat.h5", layout, weights)
    with h5py.File(path, "r") as f:
        group = f["rpn_model"]
        assert list(group.attrs["weight_names"]) == [
            f"{layer}/{w}:0"
            for layer in ("rpn_conv_shared", "rpn_class_raw", "rpn_bbox_pred")
            for w in ("kernel", "bias")
        ]
        np.testing.assert_array_equal(group["rpn_conv_shared/kernel:0"][()], weights["rpn_conv_shared"]["kernel"])
        assert group["rpn_class_raw/kernel:0"].shape == (1, 1, 512, 6)
        assert "rpn_model" in list(f.attrs["layer_names"])
        assert "rpn_conv_shared" not in f


def test_time_distributed_layers_are_named_by_their_wrapper(layout) -> None:
    assert layout.groups["mrcnn_mask_conv1"] == (
        ("mrcnn_mask_conv1/kernel:0", (3, 3, 256, 256), "float32"),
        ("mrcnn_mask_conv1/bias:0", (256,), "float32"),
    )
    assert [w for w, _, _ in layout.groups["mrcnn_class_bn1"]] == [
        f"mrcnn_class_bn1/{w}:0" for w in ("gamma", "beta", "moving_mean", "moving_variance")
    ]


@pytest.mark.parametrize(
    ("options", "array_type", "scalar_type"),
    [
        ({}, {"type": "string", "variable": True, "charset": "ascii"}, {"variable": True, "charset": "ascii"}),
        (
            {"bytes_attributes": False},
            {"type": "string", "variable": True, "charset": "utf8"},
            {"variable": True, "charset": "utf8"},
        ),
        (
            {"fixed_length": True},
            {"type": "string", "variable": False, "charset": "ascii"},
            {"variable": True, "charset": "ascii"},
        ),
    ],
)
def test_string_attribute_encodings(options, array_type, scalar_type, layout, weights, tmp_path) -> None:
    root = mh5.describe_h5(mh5.write_matterport_h5(tmp_path / "w.h5", layout, weights, **options))["/"]["attrs"]
    names = root["layer_names"]
    assert {key: names[key] for key in array_type} == array_type
    assert names["value"] == list(layout.layer_names)
    assert {key: root["keras_version"][key] for key in scalar_type} == scalar_type
    assert root["keras_version"]["value"] == "2.15.0"


def test_matterport_era_file_has_no_top_level_group(layout, weights, tmp_path) -> None:
    path = mh5.write_matterport_h5(tmp_path / "w.h5", layout, weights, fixed_length=True, top_level_group=False)
    with h5py.File(path, "r") as f:
        assert mh5.TOP_LEVEL_GROUP not in f
        assert set(f) == set(layout.layer_names)
        assert f.attrs["layer_names"].dtype.kind == "S"


def test_layout_round_trips_through_the_writer(layout, weights, tmp_path) -> None:
    for options in ({}, {"chunk_attributes": True}, {"bytes_attributes": False}, {"fixed_length": True}):
        path = mh5.write_matterport_h5(tmp_path / "w.h5", layout, weights, **options)
        assert mh5.Layout.from_h5(path) == layout


def test_calibrated_weights_are_seeded_per_weight(layout, weights) -> None:
    expected = layout.expected_weights()
    assert {layer: {s: w.shape for s, w in shorts.items()} for layer, shorts in weights.items()} == expected
    other = mh5.calibrated_weights(layout, SEED + 1)
    assert not np.array_equal(other["conv1"]["kernel"], weights["conv1"]["kernel"])
    # the same layer in another model (resnet101, same heads) gets the same values: names seed, not order
    resnet101 = mh5.calibrated_weights(mh5.Layout.named("resnet101", 5), SEED)
    for layer, short in (("conv1", "kernel"), ("mrcnn_class_logits", "bias"), ("rpn_conv_shared", "kernel")):
        np.testing.assert_array_equal(resnet101[layer][short], weights[layer][short])
    assert all(w.dtype == np.float32 for shorts in weights.values() for w in shorts.values())


def test_writer_rejects_a_wrong_shape(layout, weights, tmp_path) -> None:
    bad = {**weights, "mrcnn_class_logits": {**weights["mrcnn_class_logits"], "bias": np.zeros(7, np.float32)}}
    with pytest.raises(ValueError, match=r"mrcnn_class_logits/bias: shape \(7,\), layout says \(5,\)"):
        mh5.write_matterport_h5(tmp_path / "w.h5", layout, bad)
