"""Standalone exports of a training run's best SavedModel: a plain copy, or with float16 weights.

float16 halves the size on disk (what lets a model ship in the repository): the graph is rebuilt
with every float32 variable stored as float16 and cast back to float32 where it is read, so the
computation itself stays float32 and only the weights are rounded.
"""
import os
import shutil

import tensorflow as tf

from fer_tf import atomic, heads, serving
from fer_tf.errors import FerTfError

v1 = tf.compat.v1


def _float16_getter(getter, name, *args, dtype=tf.float32, **kwargs):
    if dtype.base_dtype == tf.float32:
        return tf.cast(getter(name, *args, dtype=tf.float16, **kwargs), tf.float32)
    return getter(name, *args, dtype=dtype, **kwargs)


def _write_float16(source, meta, out_dir):
    params = {**meta["hparams"], "classes": list(meta["label_set"]["classes"])}
    checkpoint = tf.train.load_checkpoint(os.path.join(source, "variables", "variables"))
    with tf.Graph().as_default():
        receiver = serving.serving_input_receiver_fn(meta["image_size"])()
        with v1.variable_scope("", custom_getter=_float16_getter):
            spec = heads.classifier_model_fn(receiver.features, None,
                                             tf.estimator.ModeKeys.PREDICT, params)
        variables = v1.global_variables()
        with v1.Session() as sess:
            for var in variables:
                name = var.op.name
                if not checkpoint.has_tensor(name):
                    raise FerTfError(f"{source}: variable {name} missing from the export's weights")
                var.load(checkpoint.get_tensor(name).astype(var.dtype.base_dtype.as_numpy_dtype), sess)
            signature = v1.saved_model.predict_signature_def(
                inputs={serving.INPUT_KEY: receiver.receiver_tensors[serving.INPUT_KEY]},
                outputs=spec.predictions)
            builder = v1.saved_model.Builder(out_dir)
            builder.add_meta_graph_and_variables(
                sess, [tf.saved_model.SERVING],
                signature_def_map={tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY: signature})
            builder.save()


def assemble_vggface2(model_dir, out, weights_path=None, allow_random_init=False, log=print):
    """Base (from the VGGFace2 weights file) + head (from a vggface2_head run's latest
    checkpoint) -> one SavedModel that takes image bytes, like every other export."""
    import json
    import tempfile

    from fer_tf import keras_estimator
    from fer_tf.models import vggface2
    with open(os.path.join(model_dir, serving.META_FILE)) as f:
        meta = json.load(f)
    hp = meta["hparams"]
    classes = list(meta["label_set"]["classes"])
    checkpoint = tf.train.latest_checkpoint(model_dir)
    if not checkpoint:
        raise FerTfError(f"--model-dir {model_dir}: no checkpoint; train the head first")
    model = vggface2.build_keras_model(len(classes), "features", width=hp["width"],
                                       head_units=hp["head_units"], keep_prob=hp["keep_prob"])
    keras_estimator.load_or_refuse(model, weights_path, allow_random_init, log)
    reader = tf.train.load_checkpoint(checkpoint)
    for name in ("fer_fc1", "probabilities"):
        model.get_layer(name).set_weights([reader.get_tensor(f"{name}/kernel"),
                                           reader.get_tensor(f"{name}/bias")])
    meta.update(model="vggface2", image_size=[224, 224, 3], assembled_from=checkpoint)
    meta["hparams"] = {**hp, "vggface2_mode": "features"}
    work = tempfile.mkdtemp(prefix="fer_tf_assemble_")
    meta_path, labels_path = os.path.join(work, serving.META_FILE), os.path.join(work, "labels.txt")
    atomic.write_json(meta_path, meta)
    with open(labels_path, "w") as f:
        f.write("\n".join(classes) + "\n")
    path = keras_estimator.export_keras_model(
        model, {**hp, "classes": classes, "class_weight_values": None}, (224, 224, 3),
        {serving.META_FILE: meta_path, "labels.txt": labels_path}, os.path.join(work, "export"))
    with atomic.atomic_directory(out) as tmp:
        os.rmdir(tmp)
        shutil.copytree(path, tmp)
    shutil.rmtree(work, ignore_errors=True)
    return out


def is_head_run(model_dir):
    import json
    path = os.path.join(model_dir, "fer_tf_run.json")
    if not os.path.isfile(path):
        return False
    with open(path) as f:
        return json.load(f).get("model") == "vggface2_head"


def export(model_dir, out, float16=False):
    source = serving.resolve_export(model_dir)
    meta = serving.read_meta(source)       # refuses exports that carry no label set
    if os.path.abspath(out).startswith(os.path.abspath(source)):
        raise FerTfError(f"--out {out}: must not be inside the export being copied")
    with atomic.atomic_directory(out) as tmp:
        if float16:
            os.rmdir(tmp)                   # the SavedModel builder wants to create the folder
            _write_float16(source, meta, tmp)
            shutil.copytree(os.path.join(source, "assets.extra"), os.path.join(tmp, "assets.extra"))
        else:
            for entry in os.listdir(source):
                src = os.path.join(source, entry)
                (shutil.copytree if os.path.isdir(src) else shutil.copy2)(src, os.path.join(tmp, entry))
    return out


def weights_size(export_dir):
    folder = os.path.join(export_dir, "variables")
    return sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))


def total_size(export_dir):
    return sum(os.path.getsize(os.path.join(root, f))
               for root, _, files in os.walk(export_dir) for f in files)
