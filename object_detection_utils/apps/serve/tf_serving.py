"""TF Serving's REST API for detection-zoo models: what a TF Serving client sends, and what TF Serving answers.

Requests (https://www.tensorflow.org/tfx/serving/api_rest): `{"instances": [...]}` (row format, one picture per
element, plain or as `{"<input name>": picture}`) or `{"inputs": ...}` (columnar: the batch, plain or as
`{"<input name>": batch}`), with an optional `"signature_name"` ("serving_default"). A picture is an
(H, W, 3) nested list of 0..255 integers, as the zoo's `image_tensor` takes, or `{"b64": "<encoded picture>"}`, as
the zoo's `encoded_image_string_tensor` exports take; both are accepted on the one input.

Answers: `{"predictions": [{"detection_boxes": ..., ...}, ...]}` for row requests, `{"outputs": {"detection_boxes":
[batch...], ...}}` for columnar ones: the model's raw outputs (boxes normalised [ymin, xmin, ymax, xmax], classes
as floats, box-relative masks), each float written as TF Serving writes it (shortest of `%g` and `%.9g` that reads
back as the same float32, `.0` after whole numbers). Errors are `{"error": "..."}` as TF Serving's.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...model_contract import FROZEN_INPUT, MASK_OUTPUT, LoadedModel, RawOutputs
from .http_errors import HTTPError

SIGNATURE = "serving_default"
VERSION = "1"
MAX_DETECTIONS = -1  # unknown until run: TF Serving's metadata writes -1 for a dimension the graph leaves open


@dataclass(frozen=True)
class PredictRequest:
    """The pictures of a request, in order (arrays or encoded bytes), and whether it came in row format."""

    pictures: list[np.ndarray | bytes]
    row_format: bool


def input_name(model: LoadedModel) -> str:
    """The signature's input name: `input_tensor` for a TF2 zoo export, `inputs` (image_tensor) otherwise."""
    return "inputs" if model.kind == "frozen_graph" else "input_tensor"


def parse_predict(body: Any, input_name: str) -> PredictRequest:
    """The pictures of a `:predict` request body (parsed JSON); `HTTPError` 400 with TF Serving's wording."""
    if not isinstance(body, dict):
        raise HTTPError(400, "JSON Value: not formatted correctly: Is not object")
    signature = body.get("signature_name", SIGNATURE)
    if not isinstance(signature, str):
        raise HTTPError(400, "'signature_name' key must be a string value.")
    if signature not in ("", SIGNATURE):
        raise HTTPError(400, f'Serving signature name: "{signature}" not found in signature def')
    if "instances" in body and "inputs" in body:
        raise HTTPError(400, "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist")
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list):
            raise HTTPError(400, "Excepting 'instances' to be an list/array")
        if not instances:
            raise HTTPError(400, "No values in 'instances' array")
        pictures = []
        for i, item in enumerate(instances):
            if isinstance(item, dict) and not _is_b64(item):
                if set(item) != {input_name}:
                    raise HTTPError(400, f"Failed to process element: {i} of 'instances' list. JSON object keys "
                                         f"must be equal to: {input_name}")
                item = item[input_name]
            pictures.append(_picture(item, f"element: {i} of 'instances' list"))
        return PredictRequest(pictures, row_format=True)
    if "inputs" in body:
        value = body["inputs"]
        if isinstance(value, dict) and not _is_b64(value):
            if input_name not in value:
                raise HTTPError(400, f"Missing named input: {input_name} in 'inputs' object.")
            value = value[input_name]
        if not isinstance(value, list) or not value:
            raise HTTPError(400, "'inputs' must hold a batch of pictures: a list of (H, W, 3) lists or b64 objects")
        return PredictRequest([_picture(item, f"element: {i} of 'inputs'") for i, item in enumerate(value)],
                              row_format=False)
    raise HTTPError(400, "Missing 'inputs' or 'instances' key")


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _picture(value: Any, where: str) -> np.ndarray | bytes:
    """An encoded picture's bytes from `{"b64": ...}`, or a checked (H, W, 3) uint8 array from nested lists."""
    if _is_b64(value):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError):
            raise HTTPError(400, f"Failed to process {where}. Error: Unable to base64 decode") from None
    try:
        array = np.asarray(value)
    except ValueError:  # ragged lists
        raise HTTPError(400, f"Failed to process {where}. Error: the lists are not of one shape") from None
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype.kind not in "iu" or array.size == 0:
        raise HTTPError(400, f"Failed to process {where}. Error: expected an (H, W, 3) list of integers, "
                             f"got shape {list(array.shape)} of {array.dtype.kind == 'f' and 'floats' or 'values'}")
    if array.min() < 0 or array.max() > 255:
        raise HTTPError(400, f"Failed to process {where}. Error: uint8 values must be within 0..255")
    return array.astype(np.uint8)


def predict_answer(outputs: Iterable[RawOutputs], row_format: bool) -> str:
    """TF Serving's JSON answer (text) for the pictures' raw outputs (each with a batch axis of 1), in order."""
    outputs = list(outputs)
    names = sorted(outputs[0])
    batch = {name: _stack([out[name] for out in outputs]) for name in names}
    if row_format:
        rows = ("{" + ",".join(f'"{name}":{tensor_json(batch[name][i])}' for name in names) + "}"
                for i in range(len(outputs)))
        return '{"predictions":[' + ",".join(rows) + "]}"
    return '{"outputs":{' + ",".join(f'"{name}":{tensor_json(batch[name])}' for name in names) + "}}"


def _stack(arrays: list[np.ndarray]) -> np.ndarray:
    """Outputs of several calls on one batch axis, padding the detections axis where their lengths differ."""
    if arrays[0].ndim < 2 or len({a.shape[1:] for a in arrays}) == 1:
        return np.concatenate(arrays)
    longest = max(a.shape[1] for a in arrays)
    return np.concatenate([np.pad(a, [(0, 0), (0, longest - a.shape[1])] + [(0, 0)] * (a.ndim - 2)) for a in arrays])


def tensor_json(array: np.ndarray) -> str:
    """A tensor as TF Serving's JSON writes it: nested lists, floats by `float_text`, integers as integers."""
    array = np.asarray(array)
    if array.dtype.kind == "f":
        array = array.astype(np.float32)
        values, inverse = np.unique(array.ravel(), return_inverse=True)
        texts = np.array([float_text(v) for v in values], dtype=object)[inverse]
    else:
        texts = np.array([str(int(v)) for v in array.ravel()], dtype=object)
    return _nest(texts.reshape(array.shape))


def _nest(texts: np.ndarray) -> str:
    if texts.ndim == 0:
        return str(texts[()])
    if texts.ndim == 1:
        return "[" + ",".join(texts.tolist()) + "]"
    return "[" + ",".join(_nest(part) for part in texts) + "]"


def float_text(value: np.float32) -> str:
    """A float32 as TF Serving writes it: `%g` (absl::StrCat) unless that does not read back as the same float32,
    then `%.9g`; `.0` after whole numbers; NaN, Infinity and -Infinity by name."""
    value = np.float32(value)
    if not np.isfinite(value):
        return "NaN" if np.isnan(value) else ("-Infinity" if value < 0 else "Infinity")
    text = f"{float(value):g}"
    if np.float32(text) != value:
        text = f"{float(value):.9g}"
    if "." not in text and "e" not in text:
        text += ".0"
    return text


def model_status(name: str) -> dict[str, Any]:
    """GET /v1/models/{name}: TF Serving's GetModelStatusResponse for a loaded model."""
    return {"model_version_status": [
        {"version": VERSION, "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}


def model_metadata(name: str, model: LoadedModel) -> dict[str, Any]:
    """GET /v1/models/{name}/metadata: TF Serving's GetModelMetadataResponse with the zoo signature's shapes."""
    batch = -1 if model.batched else 1

    def info(tensor: str, dtype: str, dims: list[int]) -> dict[str, Any]:
        return {"dtype": dtype, "tensor_shape": {"dim": [{"size": str(d), "name": ""} for d in dims],
                                                 "unknown_rank": False}, "name": f"{tensor}:0"}

    image_input = FROZEN_INPUT if model.kind == "frozen_graph" else "serving_default_input_tensor"
    outputs = {
        "detection_boxes": info("detection_boxes", "DT_FLOAT", [batch, MAX_DETECTIONS, 4]),
        "detection_scores": info("detection_scores", "DT_FLOAT", [batch, MAX_DETECTIONS]),
        "detection_classes": info("detection_classes", "DT_FLOAT", [batch, MAX_DETECTIONS]),
        "num_detections": info("num_detections", "DT_FLOAT", [batch]),
    }
    if model.has_masks:
        outputs[MASK_OUTPUT] = info(MASK_OUTPUT, "DT_FLOAT", [batch, MAX_DETECTIONS, -1, -1])
    signature = {"inputs": {input_name(model): info(image_input, "DT_UINT8", [batch, -1, -1, 3])},
                 "outputs": outputs, "method_name": "tensorflow/serving/predict"}
    return {"model_spec": {"name": name, "signature_name": "", "version": VERSION},
            "metadata": {"signature_def": {"signature_def": {SIGNATURE: signature}}}}
