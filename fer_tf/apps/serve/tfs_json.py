"""TF Serving's REST request and response bodies <-> numpy arrays, by the signature's declarations.

Follows TF Serving's RESTful API document: a predict request holds `instances` (row format: a
list, one entry per example — the value itself for a one-input signature, else an object of
input name -> value) or `inputs` (columnar: the batched value, or an object of them), and an
optional `signature_name`. Binary values are `{"b64": "..."}`. The response is
`{"predictions": ...}` for the row format, `{"outputs": ...}` for the columnar one; string outputs
whose name ends in `_bytes` come back as `{"b64": ...}`. Every problem is an ApiError(400) naming
the field, as TF Serving's `{"error": ...}` does.
"""
import base64
import binascii
import io

import numpy as np
from google.protobuf import json_format
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import get_model_metadata_pb2

from fer_tf.apps.serve.errors import ApiError

NUMPY_TYPES = {types_pb2.DT_FLOAT: np.float32, types_pb2.DT_DOUBLE: np.float64,
               types_pb2.DT_HALF: np.float16, types_pb2.DT_INT8: np.int8,
               types_pb2.DT_UINT8: np.uint8, types_pb2.DT_INT16: np.int16,
               types_pb2.DT_UINT16: np.uint16, types_pb2.DT_INT32: np.int32,
               types_pb2.DT_INT64: np.int64, types_pb2.DT_BOOL: np.bool_,
               types_pb2.DT_STRING: object}


def _decode_b64(value, where):
    if set(value) != {"b64"} or not isinstance(value["b64"], str):
        raise ApiError(400, f"{where}: an object value must be {{\"b64\": \"<base64>\"}}")
    try:
        return base64.b64decode(value["b64"], validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, f"{where}: \"b64\" is not valid base64") from None


def _strings(value, where):
    """Nested lists of str / {"b64"} -> the same nesting with bytes."""
    if isinstance(value, list):
        return [_strings(v, where) for v in value]
    if isinstance(value, dict):
        return _decode_b64(value, where)
    if isinstance(value, str):
        return value.encode("utf-8")
    raise ApiError(400, f"{where}: expected a string or {{\"b64\": ...}}, got {type(value).__name__}")


def to_array(value, tensor_info, where):
    """A JSON value -> numpy array of the input's dtype, its shape checked against the declared
    one (-1 where any size goes)."""
    dtype = NUMPY_TYPES.get(tensor_info.dtype)
    if dtype is None:
        raise ApiError(400, f"{where}: inputs of type {types_pb2.DataType.Name(tensor_info.dtype)} "
                            "are not supported over REST")
    try:
        if dtype is object:
            strings = _strings(value, where)
            array = np.empty(np.shape(strings) if isinstance(strings, list) else (), object)
            array[...] = strings if isinstance(strings, list) else strings
            if array.dtype != object or any(not isinstance(v, bytes) for v in array.flat):
                raise ValueError("ragged")
        else:
            raw = np.asarray(value)
            if raw.dtype == object or raw.dtype.kind in "USV":
                raise ValueError("not numbers")
            if np.issubdtype(dtype, np.integer):
                if raw.dtype.kind == "f" and not np.all(np.mod(raw, 1) == 0):
                    raise ApiError(400, f"{where}: expects whole numbers "
                                        f"({np.dtype(dtype).name})")
                info = np.iinfo(dtype)
                if raw.size and (raw.min() < info.min or raw.max() > info.max):
                    raise ApiError(400, f"{where}: values must lie in [{info.min}, {info.max}] "
                                        f"({np.dtype(dtype).name})")
            array = raw.astype(dtype)
    except ApiError:
        raise
    except (ValueError, TypeError, OverflowError):
        raise ApiError(400, f"{where}: not a rectangular array of "
                            f"{'strings' if dtype is object else 'numbers'}") from None
    check_shape(array, tensor_info, where)
    return array


def check_shape(array, tensor_info, where):
    shape = tensor_info.tensor_shape
    if shape.unknown_rank:
        return
    want = [d.size for d in shape.dim]
    if array.ndim != len(want) or any(w not in (-1, g) for w, g in zip(want, array.shape)):
        shown = "[" + ",".join(str(w) for w in want) + "]"
        raise ApiError(400, f"{where}: shape {list(array.shape)} does not match the signature's "
                            f"{shown} (-1: any size)")


def parse_predict(body, signature, max_rows):
    """A parsed JSON body -> ({input name: array}, "row" | "columnar")."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object with \"instances\" or "
                            "\"inputs\"")
    unknown = set(body) - {"instances", "inputs", "signature_name"}
    if unknown:
        raise ApiError(400, f"unknown field(s) {', '.join(sorted(map(repr, unknown)))}: a predict "
                            "request has \"instances\" or \"inputs\", and \"signature_name\"")
    if ("instances" in body) == ("inputs" in body):
        raise ApiError(400, "Missing 'inputs' or 'instances' key (exactly one of the two)")
    names = list(signature.inputs)
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise ApiError(400, "\"instances\" must be a non-empty list, one entry per example")
        if len(instances) > max_rows:
            raise ApiError(413, f"\"instances\" has {len(instances):,} entries; at most "
                                f"{max_rows:,} per request")
        columns = {name: [] for name in names}
        for i, instance in enumerate(instances):
            if isinstance(instance, dict) and not (len(names) == 1 and set(instance) == {"b64"}):
                missing, extra = set(names) - set(instance), set(instance) - set(names)
                if missing or extra:
                    raise ApiError(400, f"instances[{i}]: "
                                        + (f"missing input(s) {', '.join(sorted(missing))}"
                                           if missing else
                                           f"unknown input(s) {', '.join(sorted(extra))}")
                                        + f"; the signature takes {', '.join(names)}")
                for name in names:
                    columns[name].append(instance[name])
            elif len(names) == 1:
                columns[names[0]].append(instance)
            else:
                raise ApiError(400, f"instances[{i}]: the signature has several inputs "
                                    f"({', '.join(names)}); give an object with each")
        return {name: to_array(columns[name], signature.inputs[name], f"instances input {name!r}")
                for name in names}, "row"
    inputs = body["inputs"]
    if not (isinstance(inputs, dict) and "b64" not in inputs):
        if len(names) != 1:
            raise ApiError(400, f"\"inputs\": the signature has several inputs ({', '.join(names)}); "
                                "give an object with each")
        inputs = {names[0]: inputs}
    missing, extra = set(names) - set(inputs), set(inputs) - set(names)
    if missing or extra:
        raise ApiError(400, "\"inputs\": " + (f"missing input(s) {', '.join(sorted(missing))}"
                                              if missing else
                                              f"unknown input(s) {', '.join(sorted(extra))}")
                       + f"; the signature takes {', '.join(names)}")
    arrays = {name: to_array(inputs[name], signature.inputs[name], f"inputs {name!r}")
              for name in names}
    rows = max((len(a) if a.ndim else 1) for a in arrays.values())
    if rows > max_rows:
        raise ApiError(413, f"\"inputs\" has {rows:,} rows; at most {max_rows:,} per request")
    return arrays, "columnar"


def _jsonable(name, array):
    if array.dtype == object:
        if name.endswith("_bytes"):
            return np.vectorize(lambda b: {"b64": base64.b64encode(b).decode("ascii")},
                                otypes=[object])(array).tolist()
        return np.vectorize(lambda b: b.decode("utf-8", "replace"), otypes=[object])(array).tolist()
    return array.tolist()


def format_predict(outputs, fmt):
    """{output name: array} -> TF Serving's response object."""
    if fmt == "columnar":
        if len(outputs) == 1:
            (name, value), = outputs.items()
            return {"outputs": _jsonable(name, value)}
        return {"outputs": {name: _jsonable(name, value) for name, value in outputs.items()}}
    columns = {name: _jsonable(name, value) for name, value in outputs.items()}
    if len(columns) == 1:
        return {"predictions": next(iter(columns.values()))}
    rows = len(next(iter(columns.values())))
    return {"predictions": [{name: column[i] for name, column in columns.items()}
                            for i in range(rows)]}


def image_bytes_inputs(arrays):
    """The string values of a request that are images (to check their size before TensorFlow
    decodes them)."""
    for array in arrays.values():
        if array.dtype == object:
            yield from (v for v in array.flat if isinstance(v, bytes))


def check_image_sizes(arrays, max_pixels):
    """Refuse images declaring more than max_pixels (read from their headers by PIL; strings that
    are not images are left to the model)."""
    from PIL import Image
    for data in image_bytes_inputs(arrays):
        try:
            with Image.open(io.BytesIO(data)) as image:
                pixels = image.width * image.height
        except Image.DecompressionBombError as e:
            raise ApiError(413, f"an image is over the limit: {str(e).rstrip('.')}") from None
        except Exception:  # noqa: BLE001 — not an image PIL knows: the model decides
            continue
        if pixels > max_pixels:
            raise ApiError(413, f"an image of {image.width}x{image.height} pixels is over the "
                                f"server's --max-pixels {max_pixels:,}")


def model_status(servable):
    return {"model_version_status": [{"version": str(servable.version), "state": "AVAILABLE",
                                      "status": {"error_code": "OK", "error_message": ""}}]}


def signature_def_map(servable):
    mapping = get_model_metadata_pb2.SignatureDefMap()
    for name, signature in servable.signatures.signatures.items():
        mapping.signature_def[name].CopyFrom(signature)
    return mapping


def model_metadata(servable):
    return {"model_spec": {"name": servable.name, "signature_name": "",
                           "version": str(servable.version)},
            "metadata": {"signature_def": json_format.MessageToDict(
                signature_def_map(servable), preserving_proto_field_name=True)}}
