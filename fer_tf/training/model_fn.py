"""One model_fn skeleton for every network on the shared Estimator path, with the task's head
plugged in: the network maps normalised images to outputs; the head (`ClassifierHead`,
`LandmarkHead`) turns them into predictions, a loss and eval metrics; optimiser, schedule,
weight decay, batch-norm updates, summaries and logging live here once.

`run` is the run's typed plumbing (`fer_tf.training.config.RunSpec`: model, classes, image size,
steps ...); `params` are the hyper-parameters only.
"""
import functools

import tensorflow as tf

from fer_tf import models
from fer_tf.training import progress

v1 = tf.compat.v1
SERVING_KEY = tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY


def learning_rate(params, global_step, max_steps):
    base, schedule = params["learning_rate"], params["lr_schedule"]
    if schedule == "constant":
        return tf.constant(base, tf.float32)
    if schedule == "cosine":
        return v1.train.cosine_decay(base, global_step, max_steps, alpha=0.01)
    if schedule == "step":      # x0.1 at 50% and 75% of training
        bounds = [int(max_steps * 0.5), int(max_steps * 0.75)]
        return v1.train.piecewise_constant(global_step, bounds, [base, base * 0.1, base * 0.01])
    if schedule == "exponential":   # x0.1 over the whole run
        return v1.train.exponential_decay(base, global_step, max_steps, 0.1)
    if schedule == "plateau":       # x plateau_factor per plateau of the eval metric (progress.py)
        return base * v1.placeholder_with_default(1.0, [], name=progress.LR_SCALE)
    raise ValueError(f"unknown lr_schedule {schedule!r}")


def optimizer(params, lr):
    name = params["optimizer"]
    if name == "adam":
        return v1.train.AdamOptimizer(lr)
    if name == "momentum":
        return v1.train.MomentumOptimizer(lr, params["momentum"], use_nesterov=True)
    if name == "sgd":
        return v1.train.GradientDescentOptimizer(lr)
    raise ValueError(f"unknown optimizer {name!r}")


def weight_decay_loss(params):
    """L2 on convolution / dense kernels only (not biases, not batch-norm scales)."""
    kernels = [v for v in v1.trainable_variables()
               if v.name.split("/")[-1].split(":")[0] in ("kernel", "weights", "depthwise_kernel")]
    if not kernels or not params["weight_decay"]:
        return tf.constant(0.0)
    return params["weight_decay"] * tf.add_n([tf.nn.l2_loss(v) for v in kernels])


def data_loss(logits, labels, features, params, class_weights=None):
    num_classes = logits.shape[-1]
    weights = 1.0
    if class_weights:
        weights = tf.gather(tf.constant(class_weights, tf.float32), labels)
    if params["loss"] == "votes":
        # Barsoum et al. 2016 "probabilistic label drawing" in expectation: cross-entropy against
        # the annotators' vote distribution over the emotion classes.
        votes = features["votes"][:, :num_classes]
        target = votes / tf.maximum(tf.reduce_sum(votes, axis=1, keepdims=True), 1.0)
    else:
        target = tf.one_hot(labels, num_classes)
    loss = v1.losses.softmax_cross_entropy(target, logits, weights=weights,
                                           label_smoothing=params["label_smoothing"])
    if "teacher" not in features:      # evaluation, or a run without a teacher
        return loss
    # Knowledge distillation (Hinton et al. 2015, at temperature 1): the rest of the weight goes
    # to cross-entropy against the teacher's probabilities for the same face.
    distill = v1.losses.softmax_cross_entropy(features["teacher"], logits, weights=weights)
    return (1.0 - params["distill_weight"]) * loss + params["distill_weight"] * distill


def eval_metrics(labels, class_ids, class_names):
    metrics = {
        "accuracy": v1.metrics.accuracy(labels, class_ids),
        "mean_per_class_accuracy": v1.metrics.mean_per_class_accuracy(
            labels, class_ids, len(class_names)),
    }
    for k, name in enumerate(class_names):
        metrics[f"recall/{name.replace(' ', '_')}"] = v1.metrics.recall(
            tf.equal(labels, k), tf.equal(class_ids, k))
    return metrics


def crop_views(images, crop_size, tta):
    """The views a network trained on `crop_size` crops sees outside training, stacked along
    the batch: the centre crop (tta none), it and its mirror (flip), or the four corner crops,
    the centre crop and their mirrors (ten_crop). Returns (views [V*B, ...], V)."""
    height, width = images.shape[1], images.shape[2]
    size = crop_size or height
    if tta == "ten_crop" and size >= height:
        raise ValueError("tta=ten_crop needs a model trained on crops (crop_size below the "
                         f"input size {height})")
    top, left = (height - size) // 2, (width - size) // 2
    if tta == "ten_crop":
        corners = [(0, 0), (0, width - size), (height - size, 0), (height - size, width - size),
                   (top, left)]
    else:
        corners = [(top, left)]
    views = [images[:, y:y + size, x:x + size, :] for y, x in corners]
    if tta in ("flip", "ten_crop"):
        views += [tf.reverse(v, axis=[2]) for v in views]
    return tf.concat(views, axis=0), len(views)


class ClassifierHead:
    """Logits -> class probabilities (averaged over test-time views), cross-entropy, accuracy,
    mean per-class accuracy and per-class recall."""

    def outputs(self, run):
        return len(run.classes)

    def inputs(self, images, mode, params):
        """Training crops come from the input pipeline; elsewhere the centre crop or the
        test-time views (stacked along the batch)."""
        crop_size = params.get("crop_size") or 0
        if mode != tf.estimator.ModeKeys.TRAIN:
            return crop_views(images, crop_size, params.get("tta", "none"))
        if crop_size and images.shape[1] != crop_size:
            return crop_views(images, crop_size, "none")[0], 1   # training without augmentation
        return images, 1

    def predictions(self, logits, features, views, run, extras=None):
        if views > 1:
            # Average the views' probabilities; logits of the mean keep softmax(logits) == mean.
            per_view = tf.reshape(tf.nn.softmax(logits), [views, -1, len(run.classes)])
            logits = tf.math.log(tf.maximum(tf.reduce_mean(per_view, axis=0), 1e-12))
        class_ids = tf.argmax(logits, axis=-1, output_type=tf.int32)
        out = {"logits": logits, "probabilities": tf.nn.softmax(logits, name="probabilities"),
               "classes": class_ids,
               "class_names": tf.gather(tf.constant(list(run.classes)), class_ids)}
        if extras and "smile_logit" in extras:
            # A smile head on the same trunk (fer-tf smile-head): P(smile), averaged over views.
            smile = tf.sigmoid(tf.cast(tf.reshape(extras["smile_logit"], [views, -1]), tf.float32))
            out["smile"] = tf.reduce_mean(smile, axis=0, name="smile")
        return out

    def exported(self, predictions):
        return {k: v for k, v in predictions.items() if k != "logits"}

    def loss(self, predictions, labels, features, params, run):
        return data_loss(predictions["logits"], labels, features, params, run.class_weights)

    def metrics(self, predictions, labels, run):
        return eval_metrics(labels, predictions["classes"], run.classes)

    def logged(self, predictions, labels):
        accuracy = tf.reduce_mean(tf.cast(tf.equal(predictions["classes"], labels), tf.float32))
        v1.summary.scalar("train_accuracy", accuracy)
        v1.summary.histogram("logits", predictions["logits"])
        return {"batch_accuracy": accuracy}


def wing_loss(errors, w=10.0, epsilon=2.0):
    """Feng et al., CVPR 2018: logarithmic for small errors (|x| < w), so they keep a gradient
    that MSE lets vanish; linear beyond, like L1, continuous at w."""
    errors = tf.abs(errors)
    c = w - w * tf.math.log(1.0 + w / epsilon)
    return tf.where(errors < w, w * tf.math.log(1.0 + errors / epsilon), errors - c)


def face_nme(points, truth):
    """Per-face mean point error / outer-eye-corner distance (0-based points 36 and 45)."""
    errors = tf.reduce_mean(tf.norm(points - truth, axis=-1), axis=-1)
    return errors / tf.norm(truth[:, 36] - truth[:, 45], axis=-1)


class LandmarkHead:
    """136 outputs -> 68 crop-normalised points (and photo pixels through the crop window);
    MSE or the wing loss (`landmark_loss`); NME and failure rates at 8 % and 10 %."""

    def outputs(self, run):
        return 136

    def inputs(self, images, mode, params):
        return images, 1

    def predictions(self, outputs, features, views, run, extras=None):
        points = tf.reshape(outputs, [-1, 68, 2])
        predictions = {"points_normalized": points}
        if "window" in features:
            window = features["window"]
            predictions["points"] = points * window[:, None, 2:3] + window[:, None, :2]
        return predictions

    def exported(self, predictions):
        return predictions

    def loss(self, predictions, labels, features, params, run):
        truth = tf.reshape(labels, [-1, 136])
        points = tf.reshape(predictions["points_normalized"], [-1, 136])
        if params.get("landmark_loss", "mse") == "wing":
            # In pixels of the 128 px crop, where the wing loss's w = 10, epsilon = 2 apply.
            return tf.reduce_mean(tf.reduce_sum(wing_loss((points - truth) * 128.0), axis=-1))
        return v1.losses.mean_squared_error(truth, points)

    def metrics(self, predictions, labels, run):
        nme = face_nme(predictions["points_normalized"], labels)
        return {"nme": v1.metrics.mean(nme),
                "failure_rate_8": v1.metrics.mean(tf.cast(nme > 0.08, tf.float32)),
                "failure_rate_10": v1.metrics.mean(tf.cast(nme > 0.10, tf.float32))}

    def logged(self, predictions, labels):
        nme = tf.reduce_mean(face_nme(predictions["points_normalized"], labels))
        v1.summary.scalar("train_nme", nme)
        return {"nme": nme}


def model_fn(features, labels, mode, params, run, head):
    """The skeleton: network + head; the Estimator gets it with `run` and `head` bound."""
    spec = models.get(run.model)
    is_training = mode == tf.estimator.ModeKeys.TRAIN
    images, views = head.inputs(features["image"], mode, params)
    net = spec.build(spec.normalize(images), head.outputs(run), is_training, params)
    # A network may give more than its head's outputs: {"logits": ..., "smile_logit": ...}.
    extras = dict(net) if isinstance(net, dict) else {"logits": net}
    net = extras.pop("logits")
    predictions = head.predictions(tf.cast(net, tf.float32), features, views, run, extras)
    if mode == tf.estimator.ModeKeys.PREDICT:
        exported = head.exported(predictions)
        return tf.estimator.EstimatorSpec(mode, predictions=exported, export_outputs={
            SERVING_KEY: tf.estimator.export.PredictOutput(exported)})

    loss = head.loss(predictions, labels, features, params, run)
    loss = tf.identity(loss + weight_decay_loss(params), name="total_loss")
    if mode == tf.estimator.ModeKeys.EVAL:
        return tf.estimator.EstimatorSpec(mode, loss=loss,
                                          eval_metric_ops=head.metrics(predictions, labels, run))

    global_step = v1.train.get_or_create_global_step()
    lr = learning_rate(params, global_step, run.max_steps)
    v1.summary.scalar("learning_rate", lr)
    v1.summary.image("input_faces", images / 255.0, max_outputs=4)
    logged = head.logged(predictions, labels)
    for var in v1.trainable_variables():
        v1.summary.histogram(var.op.name, var)
    # Batch-norm moving averages update with every training step.
    with tf.control_dependencies(v1.get_collection(v1.GraphKeys.UPDATE_OPS)):
        train_op = optimizer(params, lr).minimize(loss, global_step=global_step)
    hook = v1.train.LoggingTensorHook({"step": global_step, "loss": loss, "lr": lr, **logged},
                                      every_n_iter=100)
    return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op, training_hooks=[hook])


def classifier_model_fn(run):
    return functools.partial(model_fn, run=run, head=ClassifierHead())


def landmark_model_fn(run):
    return functools.partial(model_fn, run=run, head=LandmarkHead())
