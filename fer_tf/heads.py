"""The shared classifier model_fn: losses, metrics, summaries, optimisers and export outputs.

A registered network maps normalised images to logits; everything an Estimator needs around it
lives here once, for every classifier.
"""
import tensorflow as tf

from fer_tf import models, progress

v1 = tf.compat.v1
SERVING_KEY = tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY


def learning_rate(params, global_step):
    base, schedule, max_steps = params["learning_rate"], params["lr_schedule"], params["max_steps"]
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


def data_loss(logits, labels, features, params):
    num_classes = logits.shape[-1]
    weights = 1.0
    if params.get("class_weight_values"):
        weights = tf.gather(tf.constant(params["class_weight_values"], tf.float32), labels)
    if params["loss"] == "votes":
        # Barsoum et al. 2016 "probabilistic label drawing" in expectation: cross-entropy against
        # the annotators' vote distribution over the emotion classes.
        votes = features["votes"][:, :num_classes]
        target = votes / tf.maximum(tf.reduce_sum(votes, axis=1, keepdims=True), 1.0)
        return v1.losses.softmax_cross_entropy(target, logits, weights=weights,
                                               label_smoothing=params["label_smoothing"])
    onehot = tf.one_hot(labels, num_classes)
    return v1.losses.softmax_cross_entropy(onehot, logits, weights=weights,
                                           label_smoothing=params["label_smoothing"])


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


def classifier_model_fn(features, labels, mode, params):
    spec = models.get(params["model"])
    class_names = params["classes"]
    is_training = mode == tf.estimator.ModeKeys.TRAIN
    images = features["image"]
    num_views = 1
    crop_size = params.get("crop_size") or 0
    if not is_training:
        images, num_views = crop_views(images, crop_size, params.get("tta", "none"))
    elif crop_size and images.shape[1] != crop_size:
        images, _ = crop_views(images, crop_size, "none")   # training without augmentation
    logits = spec.build(spec.normalize(images), len(class_names), is_training, params)
    logits = tf.cast(logits, tf.float32)
    if num_views > 1:
        # Average the views' probabilities; logits of the mean keep softmax(logits) == mean.
        views = tf.reshape(tf.nn.softmax(logits), [num_views, -1, len(class_names)])
        logits = tf.math.log(tf.maximum(tf.reduce_mean(views, axis=0), 1e-12))
    probabilities = tf.nn.softmax(logits, name="probabilities")
    class_ids = tf.argmax(logits, axis=-1, output_type=tf.int32)
    predictions = {
        "probabilities": probabilities,
        "classes": class_ids,
        "class_names": tf.gather(tf.constant(class_names), class_ids),
    }
    if mode == tf.estimator.ModeKeys.PREDICT:
        outputs = {SERVING_KEY: tf.estimator.export.PredictOutput(predictions)}
        return tf.estimator.EstimatorSpec(mode, predictions=predictions, export_outputs=outputs)

    loss = data_loss(logits, labels, features, params)
    loss = tf.identity(loss + weight_decay_loss(params), name="total_loss")
    if mode == tf.estimator.ModeKeys.EVAL:
        return tf.estimator.EstimatorSpec(mode, loss=loss,
                                          eval_metric_ops=eval_metrics(labels, class_ids, class_names))

    global_step = v1.train.get_or_create_global_step()
    lr = learning_rate(params, global_step)
    batch_accuracy = tf.reduce_mean(tf.cast(tf.equal(class_ids, labels), tf.float32))
    v1.summary.scalar("learning_rate", lr)
    v1.summary.scalar("train_accuracy", batch_accuracy)
    v1.summary.image("input_faces", images / 255.0, max_outputs=4)
    v1.summary.histogram("logits", logits)
    for var in v1.trainable_variables():
        v1.summary.histogram(var.op.name, var)
    # Batch-norm moving averages update with every training step.
    with tf.control_dependencies(v1.get_collection(v1.GraphKeys.UPDATE_OPS)):
        train_op = optimizer(params, lr).minimize(loss, global_step=global_step)
    logging_hook = v1.train.LoggingTensorHook(
        {"step": global_step, "loss": loss, "batch_accuracy": batch_accuracy, "lr": lr},
        every_n_iter=params.get("log_every", 100))
    return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op,
                                      training_hooks=[logging_hook])


def face_nme(points, truth):
    """Per-face mean point error / outer-eye-corner distance (0-based points 36 and 45)."""
    errors = tf.reduce_mean(tf.norm(points - truth, axis=-1), axis=-1)
    return errors / tf.norm(truth[:, 36] - truth[:, 45], axis=-1)


def landmark_model_fn(features, labels, mode, params):
    """68-point regression: MSE on crop-normalised points; NME and failure rates; exports
    points in photo pixels through the crop window."""
    spec = models.get(params["model"])
    is_training = mode == tf.estimator.ModeKeys.TRAIN
    outputs = spec.build(spec.normalize(features["image"]), 136, is_training, params)
    points = tf.reshape(tf.cast(outputs, tf.float32), [-1, 68, 2])
    if mode == tf.estimator.ModeKeys.PREDICT:
        window = features["window"]
        predictions = {"points": points * window[:, None, 2:3] + window[:, None, :2],
                       "points_normalized": points}
        return tf.estimator.EstimatorSpec(mode, predictions=predictions, export_outputs={
            SERVING_KEY: tf.estimator.export.PredictOutput(predictions)})
    loss = v1.losses.mean_squared_error(tf.reshape(labels, [-1, 136]), outputs)
    loss = tf.identity(loss + weight_decay_loss(params), name="total_loss")
    nme = face_nme(points, labels)
    if mode == tf.estimator.ModeKeys.EVAL:
        return tf.estimator.EstimatorSpec(mode, loss=loss, eval_metric_ops={
            "nme": v1.metrics.mean(nme),
            "failure_rate_8": v1.metrics.mean(tf.cast(nme > 0.08, tf.float32)),
            "failure_rate_10": v1.metrics.mean(tf.cast(nme > 0.10, tf.float32))})
    global_step = v1.train.get_or_create_global_step()
    lr = learning_rate(params, global_step)
    v1.summary.scalar("learning_rate", lr)
    v1.summary.scalar("train_nme", tf.reduce_mean(nme))
    v1.summary.image("input_faces", features["image"] / 255.0, max_outputs=4)
    with tf.control_dependencies(v1.get_collection(v1.GraphKeys.UPDATE_OPS)):
        train_op = optimizer(params, lr).minimize(loss, global_step=global_step)
    hook = v1.train.LoggingTensorHook({"step": global_step, "loss": loss, "nme": tf.reduce_mean(nme)},
                                      every_n_iter=params.get("log_every", 100))
    return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op, training_hooks=[hook])
