"""The SavedModel serving signature (encoded image bytes in) and reading an export back."""
import glob
import json
import os

import tensorflow as tf

from fer_tf import labels as label_sets
from fer_tf import preprocess
from fer_tf.errors import FerTfError

INPUT_KEY = "image_bytes"
META_FILE = "fer_tf.json"


def serving_input_receiver_fn(image_size):
    """image_bytes: a batch of PNG/JPEG/BMP strings of any size, grey or colour."""
    height, width, channels = image_size

    def receiver():
        image_bytes = tf.compat.v1.placeholder(tf.string, [None], name=INPUT_KEY)
        images = tf.map_fn(lambda b: preprocess.decode_image(b, height, width, channels),
                           image_bytes, fn_output_signature=tf.float32)
        return tf.estimator.export.ServingInputReceiver({"image": images}, {INPUT_KEY: image_bytes})

    return receiver


def is_saved_model(path):
    return os.path.isfile(os.path.join(path, "saved_model.pb"))


def resolve_export(path):
    """A SavedModel directory, or a training model dir whose best export is used."""
    if not os.path.exists(path):
        raise FerTfError(f"--model {path}: no such directory; pass a SavedModel or a model dir")
    if is_saved_model(path):
        return path
    candidates = sorted(d for d in glob.glob(os.path.join(path, "export", "best", "*"))
                        if is_saved_model(d))
    if not candidates:
        raise FerTfError(f"--model {path}: neither a SavedModel nor a model dir with an export "
                         "(export/best/*); train it first or point at an exported model")
    return candidates[-1]


def read_meta(export_dir):
    path = os.path.join(export_dir, "assets.extra", META_FILE)
    try:
        with open(path) as f:
            meta = json.load(f)
    except FileNotFoundError:
        raise FerTfError(f"{export_dir}: SavedModel has no assets.extra/{META_FILE}; it was not "
                         "exported by fer-tf, so its label set is unknown") from None
    meta["label_set_obj"] = label_sets.from_json(meta["label_set"])
    return meta


class ExportedModel:
    """A loaded SavedModel: `predict(list of encoded images) -> probabilities (N, classes)`."""

    def __init__(self, path):
        self.path = resolve_export(path)
        self.meta = read_meta(self.path)
        self.label_set = self.meta["label_set_obj"]
        self.image_size = tuple(self.meta["image_size"])
        try:
            loaded = tf.saved_model.load(self.path)
        except (OSError, ValueError, tf.errors.OpError) as e:
            raise FerTfError(f"{self.path}: cannot load SavedModel ({type(e).__name__}); "
                             "re-export it") from None
        self._loaded = loaded
        self._fn = loaded.signatures["serving_default"]

    def predict(self, encoded_images):
        out = self._fn(**{INPUT_KEY: tf.constant(list(encoded_images), dtype=tf.string)})
        return out["probabilities"].numpy()
