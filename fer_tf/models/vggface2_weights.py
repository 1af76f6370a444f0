"""Load the VGGFace2 ResNet50 weights keras-vggface published, from a local .h5 file, by layer name.

Accepts the weights-only file (`rcmalli_vggface_tf_notop_resnet50.h5`: root attribute
`layer_names`, one group per layer with `weight_names`) and a full-model file (the same under
`model_weights`, e.g. the with-top variant, whose extra `classifier` layer is ignored). Nothing is
downloaded. Any difference between the file and the model's base (missing layer, missing weight,
other shape) is refused with the differences listed.
"""
import os

import h5py
import numpy as np

from fer_tf.core.errors import FerTfError
from fer_tf.models import vggface2

WEIGHT_KINDS = ("kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance")


def _short(weight_name):
    """'conv1/7x7_s2/bn/gamma:0' -> 'gamma'."""
    return weight_name.split("/")[-1].split(":")[0]


def _decode(names):
    return [n.decode("utf8") if isinstance(n, bytes) else str(n) for n in names]


def read_layout(path):
    """{layer name: {weight kind: numpy array (lazy h5 dataset)}} and the open file."""
    if not os.path.isfile(path):
        raise FerTfError(f"--vggface2-weights {path}: no such file; download "
                         "rcmalli_vggface_tf_notop_resnet50.h5 (keras-vggface releases) and pass its path")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise FerTfError(f"--vggface2-weights {path}: not a readable HDF5 weights file ({e})") from None
    root = f["model_weights"] if "model_weights" in f else f
    if "layer_names" not in root.attrs:
        f.close()
        raise FerTfError(f"--vggface2-weights {path}: HDF5 file without Keras 'layer_names'; "
                         "expected keras-vggface's ResNet50 weights")
    layout = {}
    for layer in _decode(root.attrs["layer_names"]):
        group = root[layer]
        layout[layer] = {_short(w): group[w] for w in _decode(group.attrs.get("weight_names", []))}
    return f, layout


def expected_layout(model):
    base = set(vggface2.base_layer_names(model))
    return {layer.name: {_short(w.name): tuple(w.shape) for w in layer.weights}
            for layer in model.layers if layer.name in base and layer.weights}


def differences(expected, found):
    diffs = []
    for layer, weights in expected.items():
        if layer not in found:
            diffs.append(f"layer {layer} missing")
            continue
        for kind, shape in weights.items():
            if kind not in found[layer]:
                diffs.append(f"{layer}/{kind} missing")
            elif tuple(found[layer][kind].shape) != shape:
                diffs.append(f"{layer}/{kind} has shape {tuple(found[layer][kind].shape)}, "
                             f"model needs {shape}")
    return diffs


def load(model, path):
    """Set the base layers of `model` from the file; returns the number of layers set."""
    f, found = read_layout(path)
    with f:
        expected = expected_layout(model)
        diffs = differences(expected, found)
        if diffs:
            shown = "; ".join(diffs[:8]) + (f"; and {len(diffs) - 8} more" if len(diffs) > 8 else "")
            raise FerTfError(f"--vggface2-weights {path}: does not match the VGGFace2 ResNet50 "
                             f"({len(diffs)} difference(s)): {shown}")
        by_name = {layer.name: layer for layer in model.layers}
        for name in expected:
            layer = by_name[name]
            layer.set_weights([np.asarray(found[name][_short(w.name)]) for w in layer.weights])
    return len(expected)


def save_layout(model, path):
    """Write the base's weights in the keras-vggface weights-only layout (for tests and for
    re-saving converted weights)."""
    expected = expected_layout(model)
    by_name = {layer.name: layer for layer in model.layers}
    with h5py.File(path, "w") as f:
        # Fixed-length byte strings, as Keras writes them.
        f.attrs["layer_names"] = np.array([n.encode() for n in expected])
        for name in expected:
            group = f.create_group(name)
            weight_names = [f"{name}/{_short(w.name)}:0" for w in by_name[name].weights]
            group.attrs["weight_names"] = np.array([w.encode() for w in weight_names])
            for w, value in zip(weight_names, by_name[name].get_weights()):
                group.create_dataset(w, data=value)


def load_or_refuse(model, weights_path, allow_random_init, log):
    if weights_path:
        layers = load(model, weights_path)
        log(f"loaded VGGFace2 weights into {layers} layers from {weights_path}")
    elif allow_random_init:
        log("WARNING: no --vggface2-weights: the ResNet50 starts from RANDOM weights. This is not "
            "the seed's transfer learning and its results will not be the seed's.")
    else:
        raise FerTfError("--vggface2-weights PATH is required (keras-vggface's "
                         "rcmalli_vggface_tf_notop_resnet50.h5; nothing is downloaded); pass "
                         "--allow-random-init to train from random weights instead")
