"""The layout of a fer-tf export, owned here: a SavedModel (TF Serving's format) with fer-tf's
metadata and class names beside it, and the names of its inputs and signatures. Training, export,
rebuild, loading, serving and the output rule read these names from this module only.

    EXPORT/saved_model.pb, variables/          the graph and weights
    EXPORT/assets.extra/fer_tf.json            model, label set, image size, hyper-parameters ...
    EXPORT/assets.extra/labels.txt             the class names, one per line
"""
import os

ASSETS_EXTRA = "assets.extra"
META_FILE = "fer_tf.json"
LABELS_FILE = "labels.txt"

INPUT_KEY = "image_bytes"                       # encoded images (PNG/JPEG/BMP, any size)
SERVING_DEFAULT = "serving_default"             # tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY
FACES_SIGNATURE = "faces"                       # uint8 faces at the export's image size
CROPS_SIGNATURE = "crops"                       # uint8 landmark crops (landmark exports)
IMAGE_ONLY_SIGNATURE = "image_only:serving_default"   # the Estimator's name for it


def meta_path(export_dir):
    return os.path.join(export_dir, ASSETS_EXTRA, META_FILE)


def write_assets(folder, meta):
    """The metadata and labels.txt, written atomically into `folder` (an export's assets.extra/,
    or a model dir whose exports copy them) -> {asset name: path}: the Estimator's assets_extra.
    The one place either file is written."""
    from fer_tf.core import atomic
    paths = {META_FILE: os.path.join(folder, META_FILE),
             LABELS_FILE: os.path.join(folder, LABELS_FILE)}
    atomic.write_json(paths[META_FILE], meta)
    with atomic.atomic_file(paths[LABELS_FILE]) as f:
        f.write("\n".join(meta["label_set"]["classes"]) + "\n")
    return paths
