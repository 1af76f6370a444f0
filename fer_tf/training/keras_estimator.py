"""Keras models through tf.keras.estimator.model_to_estimator, dressed like every other model.

model_to_estimator gives a model_fn whose predictions are the Keras outputs; it is wrapped so the
export carries the same `probabilities`, `classes`, `class_names` signature and the evaluation the
same per-class metrics as the shared classifier model_fn.
"""
import os
import tempfile

import tensorflow as tf

from fer_tf.training import model_fn, receivers
from fer_tf import models
from fer_tf.models import vggface2


def weighted_sparse_ce(class_weights):
    def loss(y_true, y_pred):
        # The constant is made here, inside whichever graph the Estimator is building.
        weights = tf.constant(list(class_weights), tf.float32)
        y_true = tf.cast(tf.reshape(y_true, [-1]), tf.int32)
        ce = tf.keras.losses.sparse_categorical_crossentropy(y_true, y_pred)
        return ce * tf.gather(weights, y_true)

    return loss


def with_class_outputs(keras_model_fn, class_names):
    def wrapped(features, labels, mode, config):
        spec = keras_model_fn(features, labels, mode, config)
        probabilities = spec.predictions["probabilities"]
        class_ids = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        if mode == tf.estimator.ModeKeys.PREDICT:
            predictions = {"probabilities": probabilities, "classes": class_ids,
                           "class_names": tf.gather(tf.constant(class_names), class_ids)}
            return spec._replace(predictions=predictions, export_outputs={
                model_fn.SERVING_KEY: tf.estimator.export.PredictOutput(predictions)})
        if mode == tf.estimator.ModeKeys.EVAL:
            labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
            metrics = {**spec.eval_metric_ops, **model_fn.eval_metrics(labels, class_ids, class_names)}
            return spec._replace(eval_metric_ops=metrics)
        return spec

    return wrapped


def to_estimator(model, config, params, run):
    """Compile, model_to_estimator, and wrap for the shared signature and metrics."""
    classes = list(run.classes)
    loss = (weighted_sparse_ce(run.class_weights) if run.class_weights
            else "sparse_categorical_crossentropy")
    # model_to_estimator needs a legacy (TF1-compatible) optimizer.
    optimizer = tf.keras.optimizers.legacy.Adam(params["learning_rate"])
    model.compile(optimizer=optimizer, loss=loss,
                  metrics=[tf.keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    # Name-based ("saver") checkpoints keep the Keras layer names (conv5_3_3x3/kernel ...), as a
    # TF1 checkpoint would, instead of object-graph paths.
    keras_est = tf.keras.estimator.model_to_estimator(keras_model=model, config=config,
                                                      checkpoint_format="saver")
    # The Keras estimator starts from a checkpoint of the Keras weights (e.g. the loaded VGGFace2
    # base); the wrapper must warm-start from the same one.
    return tf.estimator.Estimator(with_class_outputs(keras_est.model_fn, classes), config=config,
                                  warm_start_from=keras_est._warm_start_settings)


def keras_estimator(config, params, run, options):
    """A registered Keras model (ModelSpec.keras_model), its pretrained weights loaded by its own
    ModelSpec.keras_weights (which may refuse, e.g. without --vggface2-weights)."""
    spec = models.get(run.model)
    model = spec.keras_model(len(run.classes), params)
    if spec.keras_weights:
        spec.keras_weights(model, options)
    return to_estimator(model, config, params, run)


def head_estimator(config, params, run):
    model = vggface2.build_head_model(len(run.classes), run.feature_dim, params["head_units"],
                                      params["keep_prob"])
    return to_estimator(model, config, params, run)


def export_keras_model(model, params, run, assets_extra, export_base):
    """Export a Keras model (weights as they are now) with the shared serving signature."""
    config = tf.estimator.RunConfig(model_dir=tempfile.mkdtemp(prefix="fer_tf_keras_export_"))
    estimator = to_estimator(model, config, params, run)
    path = estimator.export_saved_model(
        export_base, receivers.serving_input_receiver_fn(run.image_size), assets_extra=assets_extra,
        checkpoint_path=estimator._warm_start_settings.ckpt_to_initialize_from)
    return path.decode() if isinstance(path, bytes) else path


def assemble_head_export(model_dir, work, weights_path=None, allow_random_init=False, log=print):
    """The keras_head task's export: the base (from the VGGFace2 weights file) + the head (from
    the run's latest checkpoint) -> one SavedModel under `work` that takes image bytes, like
    every other export; returns its path."""
    from fer_tf.core import export_format
    from fer_tf.core.errors import FerTfError
    from fer_tf.models import vggface2_weights
    from fer_tf.training.config import RunSpec
    meta = export_format.read_meta(model_dir)
    hp, classes = meta.hparams, meta.classes
    checkpoint = tf.train.latest_checkpoint(model_dir)
    if not checkpoint:
        raise FerTfError(f"--model-dir {model_dir}: no checkpoint; train the head first")
    model = vggface2.build_keras_model(len(classes), "features", width=hp["width"],
                                       head_units=hp["head_units"], keep_prob=hp["keep_prob"])
    vggface2_weights.load_or_refuse(model, weights_path, allow_random_init, log)
    reader = tf.train.load_checkpoint(checkpoint)
    for name in ("fer_fc1", "probabilities"):
        model.get_layer(name).set_weights([reader.get_tensor(f"{name}/kernel"),
                                           reader.get_tensor(f"{name}/bias")])
    meta = meta.replace(model="vggface2", image_size=(224, 224, 3), assembled_from=checkpoint,
                        hparams={**hp, "vggface2_mode": "features"})
    return export_keras_model(model, hp, RunSpec.for_export(meta),
                              export_format.write_assets(work, meta), os.path.join(work, "export"))
