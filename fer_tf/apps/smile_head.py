"""A smile head on an expression export's own trunk (`fer-tf smile-head`): the export then gives
expression probabilities and P(smile) from one forward pass per face, where the default used to
run a second network for the smile.

The trunk stays as it is; a logistic regression on its pooled features (the face and its mirror
image, as two samples) is fitted on smile records (GENKI-4K). GENKI's protocol is kept: with the
records' k folds, fold j is scored by a head fitted on the other folds only (its L2 strength chosen
by an inner cross-validation on those folds), both views' probabilities averaged as in the export;
photos without a detected face count as errors. The shipped head is then fitted on every fold.
"""
import os

import numpy as np
import tensorflow as tf

from fer_tf.core import atomic
from fer_tf import models
from fer_tf.data import preprocess, records
from fer_tf.core.errors import FerTfError
from fer_tf.serving import exported, rebuild
from fer_tf.training import model_fn
from fer_tf.core.export_format import INPUT_KEY

v1 = tf.compat.v1
L2_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)
INNER_FOLDS = 3
VIEWS = {"none": 1, "flip": 2}      # the export's test-time views -> views scored


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


def fit_logistic(x, y, l2, iterations=25):
    """Newton's method on mean log-loss + l2/2 |w|^2 (bias not penalised) -> (w, b)."""
    n, d = x.shape
    design = np.hstack([x, np.ones((n, 1))])
    theta = np.zeros(d + 1)
    penalty = np.full(d + 1, l2)
    penalty[-1] = 0.0
    for _ in range(iterations):
        p = _sigmoid(design @ theta)
        gradient = design.T @ (p - y) / n + penalty * theta
        hessian = (design * (p * (1 - p))[:, None]).T @ design / n + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.abs(step).max() < 1e-7:
            break
    return theta[:-1], theta[-1]


class Standardized:
    """Per-feature standardisation, fitted on the training faces, folded into the head after."""

    def __init__(self, x):
        self.mean, self.std = x.mean(axis=0), x.std(axis=0) + 1e-6

    def __call__(self, x):
        return (x - self.mean) / self.std

    def fold(self, w, b):
        return w / self.std, b - float(np.sum(w * self.mean / self.std))


def fit_head(views, labels, l2):
    """views [N, V, D] (every view a sample) -> (w, b) on the raw features."""
    x = views.reshape(-1, views.shape[-1])
    y = np.repeat(labels, views.shape[1]).astype(np.float64)
    scale = Standardized(x)
    return scale.fold(*fit_logistic(scale(x), y, l2))


def smile_probability(views, w, b):
    """Mean over the views of P(smile), as the export computes it."""
    return _sigmoid(views @ w + b).mean(axis=1)


def choose_l2(views, labels, seed=0, scored=2):
    """The L2 strength with the best inner cross-validated accuracy on these faces."""
    folds = np.random.RandomState(seed).permutation(len(labels)) % INNER_FOLDS
    best = None
    for l2 in L2_GRID:
        correct = 0
        for k in range(INNER_FOLDS):
            w, b = fit_head(views[folds != k], labels[folds != k], l2)
            held = smile_probability(views[folds == k][:, :scored], w, b)
            correct += int(((held > 0.5) == labels[folds == k]).sum())
        if best is None or correct > best[1]:
            best = (l2, correct)
    return best[0]


def cross_validate(views, labels, scored=2):
    """Per fold k: P(smile) of fold k's faces (the mean over its first `scored` views, as the
    export averages them) from a head fitted on the other folds only (L2 chosen by an inner
    cross-validation on them) -> ([probabilities per fold], [l2 per fold])."""
    held_out, chosen = [], []
    for k in range(len(views)):
        train_x = np.concatenate([v for j, v in enumerate(views) if j != k])
        train_y = np.concatenate([y for j, y in enumerate(labels) if j != k])
        l2 = choose_l2(train_x, train_y, seed=k, scored=scored)
        held_out.append(smile_probability(views[k][:, :scored], *fit_head(train_x, train_y, l2)))
        chosen.append(l2)
    return held_out, chosen


def trunk_features(export_dir, data_dir, splits, batch_size=128):
    """Per record split: (features [N, 2, D] of each face and its mirror image, labels [N]),
    through the export's own decode, normalisation and trunk (its stored weights)."""
    meta = exported.read_meta(export_dir)
    spec = models.get(meta.model)
    height, width, channels = meta.image_size
    # Read eagerly, before the graph is built.
    batches = {split: list(records.iter_split(data_dir, split, batch_size)) for split in splits}
    with tf.Graph().as_default():
        image_bytes = v1.placeholder(tf.string, [None], name=INPUT_KEY)
        images = tf.map_fn(lambda b: preprocess.decode_image(b, height, width, channels),
                           image_bytes, fn_output_signature=tf.float32)
        # The face and its mirror image, cut as the export cuts its views (centre crop).
        both, _ = model_fn.crop_views(images, meta.crop_size, "flip")
        pooled = spec.features(spec.normalize(both), meta.hparams, len(meta.classes))
        with v1.Session() as sess:
            rebuild.load_weights(sess, {"": rebuild.weight_source(export_dir)})
            result = []
            for split in splits:
                out, labels = [], []
                for encoded, batch_labels in batches[split]:
                    f = sess.run(pooled, {image_bytes: encoded})
                    n = len(batch_labels)
                    out.append(np.stack([f[:n], f[n:]], axis=1))
                    labels.append(batch_labels)
                result.append((np.concatenate(out).astype(np.float64), np.concatenate(labels)))
    return result


def served_views(meta):
    """How many of (face, mirror image) the export averages: its test-time views."""
    tta = meta.tta
    if tta not in VIEWS:
        raise FerTfError(f"a smile head averages the face and its mirror image at most; "
                         f"re-export the model with --tta flip or none (it has {tta})")
    return VIEWS[tta]


class _Overlay:
    """A checkpoint reader with extra tensors (the fitted head) on top."""

    def __init__(self, base, extra):
        self.base, self.extra = base, extra

    def has_tensor(self, name):
        return name in self.extra or self.base.has_tensor(name)

    def get_tensor(self, name):
        return self.extra[name] if name in self.extra else self.base.get_tensor(name)


def check_inputs(model_path, data_dir):
    source = exported.resolve_export(model_path)
    meta = exported.read_meta(source)
    if meta.is_ensemble or models.get(meta.model).features is None:
        raise FerTfError(f"--model {model_path}: a {meta.model} export; a smile head needs a "
                         "single network that declares its features (dlib_resnet, vgg)")
    manifest = records.read_manifest(data_dir)
    classes = manifest.classes
    if "smile" not in classes or len(classes) != 2:
        raise FerTfError(f"--data {data_dir}: {manifest.labels.name} records; a smile "
                         "head needs smile records (fer-tf records GENKI4K.tar.gz --dataset genki)")
    folds = manifest.fold_count
    if not folds:
        raise FerTfError(f"--data {data_dir}: records without folds; convert GENKI-4K with folds")
    return source, meta, manifest, folds


def fit(model_path, data_dir, out, storage="float32", log=print):
    """Cross-validate, fit on every fold, write `out` = the export with its smile head; returns
    the cross-validation report (also stored in the export's metadata)."""
    source, meta, manifest, folds = check_inputs(model_path, data_dir)
    smile = manifest.classes.index("smile")
    scored = served_views(meta)
    per_fold = trunk_features(source, data_dir, [f"fold{k}" for k in range(folds)])
    views = [v for v, _ in per_fold]
    labels = [(y == smile).astype(np.int64) for _, y in per_fold]
    held_out, chosen = cross_validate(views, labels, scored)
    correct = 0
    for k, (p, y, l2) in enumerate(zip(held_out, labels, chosen)):
        right = int(((p > 0.5) == y).sum())
        log(f"fold {k}: {right} of {len(y)} faces right (l2 {l2:g})")
        correct += right
    faces = sum(len(y) for y in labels)
    photos = manifest.photos or faces
    all_x, all_y = np.concatenate(views), np.concatenate(labels)
    l2 = choose_l2(all_x, all_y, scored=scored)
    w, b = fit_head(all_x, all_y, l2)
    report = {"data": os.path.basename(os.path.normpath(data_dir)), "folds": folds,
              "faces": faces, "photos": photos, "correct": correct,
              "accuracy_faces": correct / faces, "accuracy_all_photos": correct / photos,
              "views": scored, "l2_per_fold": chosen, "l2": l2}
    head = models.SMILE_HEAD
    extra = {f"{head}/kernel": w.astype(np.float32)[:, None], f"{head}/bias": np.array([b], np.float32)}
    meta = meta.replace(hparams={**meta.hparams, "smile_head": True}, smile_head=report)
    with atomic.atomic_directory(out) as tmp:
        os.rmdir(tmp)
        rebuild.write(meta, {"": _Overlay(rebuild.weight_source(source), extra)}, tmp, storage)
    return report

