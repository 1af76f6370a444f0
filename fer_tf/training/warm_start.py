"""`--init-from`: start training from another run's or a shipped export's weights.

Every variable of the new graph whose name and shape match one in the source is restored (the
Estimator's WarmStartSettings, so it happens only when the model dir has no checkpoint yet and a
resumed run keeps its own weights); a classifier whose label set differs keeps its fresh
initialisation. Exports store float16 or int8 weights (serving/rebuild.py): they are first written to a
float32 checkpoint inside the model dir, named like the training graph's variables.
"""
import os
import re

import numpy as np
import tensorflow as tf

from fer_tf.core.errors import FerTfError
from fer_tf.core import export_format

v1 = tf.compat.v1
COPY_DIR = "init_from"
PRETRAINED_DIR = "pretrained"
SCALE_SUFFIX = "_scale"         # int8 exports: NAME (int8) and NAME_scale (per output channel)


def read_float(reader, name):
    """A weight as float32 from a checkpoint of any storage: float32, float16, or int8 with its
    per-channel scale (serving/rebuild.py writes those)."""
    value = reader.get_tensor(name)
    if value.dtype == np.int8:
        return value.astype(np.float32) * reader.get_tensor(name + SCALE_SUFFIX)
    return value.astype(np.float32)


def source(path, flag="--init-from"):
    """-> (checkpoint prefix, fer-tf metadata) of a SavedModel exported by fer-tf or a model dir."""
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        checkpoint = os.path.join(path, "variables", "variables")
    elif os.path.isdir(path):
        checkpoint = tf.train.latest_checkpoint(path)
        if checkpoint is None:
            raise FerTfError(f"{flag} {path}: a folder without a checkpoint or SavedModel; give "
                             "an export (e.g. models/default) or a trained model dir")
    else:
        raise FerTfError(f"{flag} {path}: no such directory; give an export (e.g. models/default) "
                         "or a trained model dir")
    meta = export_format.read_meta(path, "not written by fer-tf, so its model is unknown; give a "
                                         "fer-tf export or model dir")
    if meta.is_ensemble:
        raise FerTfError(f"{flag} {path}: an ensemble; start from one of its members instead")
    return checkpoint, meta


def model_weights(estimator, run, points=False):
    """name -> shape of the weights the training graph creates — trainable variables and batch
    norm's moving statistics, not optimiser slots or the step counter — built once in a scratch
    graph on placeholders (nothing runs)."""
    with tf.Graph().as_default():
        features = {"image": v1.placeholder(tf.float32, [2, *run.image_size]),
                    "votes": v1.placeholder(tf.float32, [2, len(run.classes)])}
        # Classifiers take class ids; landmark models 68 (x, y) pairs (one "class" per point).
        labels = (v1.placeholder(tf.float32, [2, len(run.classes), 2]) if points
                  else v1.placeholder(tf.int32, [2]))
        v1.train.create_global_step()
        estimator.model_fn(features, labels, tf.estimator.ModeKeys.TRAIN, estimator.config)
        shapes = {v.op.name: v.shape.as_list() for v in v1.global_variables()}
    # An optimiser's slots are named after their variable ("w/Adam"); its powers end "_power".
    return {name: shape for name, shape in shapes.items()
            if name != "global_step" and not name.endswith("_power")
            and not any(name.startswith(other + "/") for other in shapes)}


def float32_copy(checkpoint, names, out_dir):
    """The named tensors of `checkpoint` as a float32 checkpoint in out_dir -> its prefix."""
    reader = tf.train.load_checkpoint(checkpoint)
    with tf.Graph().as_default():
        variables = [v1.Variable(read_float(reader, n), name=n) for n in names]
        saver = v1.train.Saver(variables, write_version=v1.train.SaverDef.V2)
        with v1.Session() as session:
            session.run(v1.variables_initializer(variables))
            os.makedirs(out_dir, exist_ok=True)
            return saver.save(session, os.path.join(out_dir, "weights"), write_meta_graph=False)


def settings(path, model_name, estimator, run, model_dir, log=print, points=False):
    """-> tf.estimator.WarmStartSettings restoring what matches; logs what stays new.
    `estimator`: one built for the run (without warm start), to trace its graph; `points`: a
    landmark model's run."""
    checkpoint, meta = source(path)
    if meta.model != model_name:
        raise FerTfError(f"--init-from {path}: a {meta.model} model; train --model "
                         f"{meta.model} to start from it")
    reader = tf.train.load_checkpoint(checkpoint)
    have = reader.get_variable_to_shape_map()
    trainable = model_weights(estimator, run, points)
    matched = sorted(n for n, shape in trainable.items() if have.get(n) == shape)
    if not matched:
        raise FerTfError(f"--init-from {path}: no weights match the {model_name} graph "
                         "(different widths or input size?)")
    prefix = float32_copy(checkpoint, matched, os.path.join(model_dir, COPY_DIR))
    return _restoring(prefix, matched, trainable, f"--init-from {path}", log)


def pretrained(spec, estimator, run, model_dir, log=print):
    """-> WarmStartSettings from the model's own pretrained weights (ModelSpec.pretrained), e.g.
    dlib's face-recognition ResNet; what the graph has beyond them (the new head) starts fresh."""
    prefix = spec.pretrained(os.path.join(model_dir, PRETRAINED_DIR))
    have = tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
    trainable = model_weights(estimator, run)
    matched = sorted(n for n, shape in trainable.items() if have.get(n) == shape)
    if len(matched) != len(have):
        raise FerTfError(f"{spec.name}: its pretrained weights do not fit its graph "
                         f"({len(matched)} of {len(have)} tensors match)")
    return _restoring(prefix, matched, trainable, f"{spec.name} pretrained weights", log)


def _restoring(prefix, matched, trainable, what, log):
    fresh = sorted(set(trainable) - set(matched))
    log(f"{what}: {len(matched)} of {len(trainable)} tensors restored"
        + (f"; new: {', '.join(fresh)}" if fresh else ""))
    return tf.estimator.WarmStartSettings(
        ckpt_to_initialize_from=prefix,
        # Each entry is a regex matched against variable names ("w:0"), so anchor it exactly:
        # a bare "conv1/kernel" would also take the optimiser's "conv1/kernel/Adam".
        vars_to_warm_start=[f"^{re.escape(name)}:0$" for name in matched])
