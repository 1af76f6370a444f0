"""Pin every shipped classifier's behaviour: its per-face probabilities (and P(smile), if it has a
smile head) on the bundled sample's PrivateTest faces, and the metadata that decides them (model,
label set, input size, test-time views, prior correction, smile head, weight storage), into
tests/data/shipped_behaviour.json. Run once when an export is shipped; tests/test_shipped_models.py
then tells every export — and every setting of views, prior correction and storage — apart.

    python tools/pin_shipped_models.py            # all of models/ (landmark exports excluded)
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from fer_tf.data import convert, records  # noqa: E402
from fer_tf.serving import exported  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, "models")
DATA = os.path.join(ROOT, "tests", "data")
OUT = os.path.join(DATA, "shipped_behaviour.json")


def sample_faces(records_dir):
    """uint8 [N, 48, 48, 1] test faces of a record folder, in record order."""
    faces = []
    for encoded, _ in records.iter_split(records_dir, "test", 256):
        faces += [tf.io.decode_png(e, channels=1).numpy() for e in encoded]
    return np.stack(faces)


def storage(path):
    """How the export stores its kernels: int8 (with per-channel scales), float16 or float32."""
    reader = tf.train.load_checkpoint(os.path.join(path, "variables", "variables"))
    dtypes = {str(d) for d in reader.get_variable_to_dtype_map().values()}
    return "int8" if "<dtype: 'int8'>" in dtypes else "float16" if "<dtype: 'float16'>" in dtypes else "float32"


def behaviour(path, faces):
    model = exported.ExportedModel(path)
    meta = model.meta
    probabilities, smiles = model.predict_faces_and_smiles(faces)
    return {
        "model": meta.model, "label_set": meta.labels.name,
        "image_size": list(meta.image_size),
        "views": [m.tta for m in meta.singles],
        "prior_tau": (meta.prior_correction or {}).get("tau"),
        "smile_head": bool(meta.smile_head), "storage": storage(path),
        "probabilities": np.round(probabilities, 6).tolist(),
        "smile": None if smiles is None else np.round(smiles, 6).tolist(),
    }


def main():
    import tempfile
    work = tempfile.mkdtemp(prefix="pin_")
    fer = os.path.join(work, "fer2013")
    convert.convert_fer2013(os.path.join(DATA, "fer2013_sample.csv.gz"), fer, progress=False)
    faces = sample_faces(fer)
    pinned = {"_about": __doc__.splitlines()[0] + " Faces: the sample's PrivateTest rows "
              "(tests/data/fer2013_sample.csv.gz), grey 48x48, through the `faces` signature."}
    for name in sorted(os.listdir(MODELS)):
        path = os.path.join(MODELS, name)
        if not exported.is_saved_model(path):
            continue
        if exported.read_meta(path).labels.name == "landmarks68":
            continue
        pinned[name] = behaviour(path, faces)
        print(f"{name}: {pinned[name]['model']}, views {pinned[name]['views']}, "
              f"storage {pinned[name]['storage']}")
    with open(OUT, "w") as f:
        json.dump(pinned, f, indent=1)
        f.write("\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
