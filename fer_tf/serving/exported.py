"""Reading an export back: resolve a model dir to its best export, its fer-tf metadata, and a
loaded SavedModel to call (`ExportedModel` for classifiers, `LandmarkModel` for landmarks)."""
import os

import numpy as np
import tensorflow as tf

from fer_tf import atomic
from fer_tf import labels as label_sets
from fer_tf.data.records import encode_png
from fer_tf.errors import FerTfError
from fer_tf.outputs import META_FILE
from fer_tf.training import run
from fer_tf.training.receivers import INPUT_KEY

FACES_SIGNATURE = "faces"      # the raw-faces signature of rebuilt exports (serving/rebuild.py)


def is_saved_model(path):
    return os.path.isfile(os.path.join(path, "saved_model.pb"))


def resolve_export(path, flag="--model"):
    """A SavedModel directory, or a training model dir whose best export is used."""
    if not os.path.exists(path):
        raise FerTfError(f"{flag} {path}: no such directory; pass a SavedModel or a model dir")
    if is_saved_model(path):
        return path
    best = run.best_export(path)
    if not best:
        raise FerTfError(f"{flag} {path}: neither a SavedModel nor a model dir with an export "
                         "(export/best/*); train it first or point at an exported model")
    return best


def read_meta(export_dir):
    meta = atomic.read_json(os.path.join(export_dir, "assets.extra", META_FILE),
                            "this SavedModel was not exported by fer-tf, so its label set is "
                            "unknown; export it with `fer-tf export`")
    meta["label_set_obj"] = label_sets.from_json(meta["label_set"])
    return meta


class ExportedModel:
    """A loaded SavedModel: `predict(list of encoded images) -> probabilities (N, classes)`."""

    def __init__(self, path, flag="--model"):
        self.path = resolve_export(path, flag)
        self.meta = read_meta(self.path)
        self.label_set = self.meta["label_set_obj"]
        self.image_size = tuple(self.meta["image_size"])
        members = self.meta.get("members") or [self.meta]     # an ensemble, or one model
        self.tta = members[0].get("hparams", {}).get("tta")
        try:
            loaded = tf.saved_model.load(self.path)
        except (OSError, ValueError, tf.errors.OpError) as e:
            raise FerTfError(f"{self.path}: cannot load SavedModel ({type(e).__name__}); "
                             "re-export it") from None
        self._loaded = loaded
        self._fn = loaded.signatures["serving_default"]
        # Exports rebuilt by fer-tf also take raw faces (no encode/decode); older ones do not.
        self._faces_fn = loaded.signatures.get(FACES_SIGNATURE)

    def predict(self, encoded_images):
        """Probabilities (N, classes) of encoded images (PNG/JPEG/BMP bytes, any size)."""
        out = self._fn(**{INPUT_KEY: tf.constant(list(encoded_images), dtype=tf.string)})
        return out["probabilities"].numpy()

    def predict_faces(self, faces):
        """Probabilities of uint8 faces [N, H, W, C] at the export's image_size."""
        faces = np.asarray(faces, np.uint8)
        if self._faces_fn is None:
            # cv2's encoder takes BGR; the faces are RGB (or grey).
            return self.predict([encode_png(f[:, :, ::-1] if f.shape[-1] == 3 else f) for f in faces])
        return self._faces_fn(**{FACES_SIGNATURE: tf.constant(faces)})["probabilities"].numpy()


class LandmarkModel:
    """An exported landmark SavedModel: photo bytes + face box -> 68 points in photo pixels."""

    def __init__(self, path, flag="--model"):
        self.path = resolve_export(path, flag)
        meta = read_meta(self.path)
        if meta["model"] != "landmarks":
            raise FerTfError(f"{flag} {path}: a {meta['model']} model, not a landmark model")
        self._fn = tf.saved_model.load(self.path).signatures["serving_default"]

    def points(self, encoded, box):
        out = self._fn(image_bytes=tf.constant([encoded]), box=tf.constant([box], tf.float32))
        return out["points"].numpy()[0]
