"""Measurements shared by the bench scripts."""
import os
import shutil
import tarfile
import tempfile
import time


def estimator_rate(model, data_dir, steps, batch_size=64, overrides=None, synthetic=False):
    """Training images/s of a registered model through its task's Estimator and the input_fn
    (augmentation on), or the synthetic input_fn (no records read)."""
    import dataclasses

    import tensorflow as tf
    from fer_tf.core import logs
    from fer_tf.training import inputs, run, tasks
    logs.setup()
    prepared = run.prepare(model, data_dir, {"batch_size": batch_size, **(overrides or {})})
    params, run_spec = prepared.params, dataclasses.replace(prepared.run, max_steps=10**6)
    model_dir = tempfile.mkdtemp(prefix="bench_est_")
    config = run.make_run_config(model_dir, 10**6, 0, mixed_precision=params["mixed_precision"])
    est = prepared.task.estimator(config, params, run_spec,
                                  tasks.Options(allow_random_init=True, log=lambda *_: None))
    if synthetic:
        train_input = inputs.synthetic_input_fn(run_spec, batch_size)
    else:
        train_input = lambda: inputs.input_fn(tf.estimator.ModeKeys.TRAIN, params, run_spec,
                                                   prepared.manifest)  # noqa: E731
    est.train(train_input, steps=10)        # graph build, first checkpoint, warm-up
    start = time.perf_counter()
    est.train(train_input, steps=steps)     # includes the restore, as a resumed run would
    seconds = time.perf_counter() - start
    shutil.rmtree(model_dir, ignore_errors=True)
    return steps * batch_size / seconds


def savedmodel_latency(export_dir, encoded, repeats=100):
    """Median and p90 milliseconds of one-image calls to an export's serving signature."""
    import numpy as np
    from fer_tf.serving import exported
    model = exported.ExportedModel(export_dir)
    for _ in range(5):
        model.predict([encoded])
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict([encoded])
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times)), float(np.percentile(times, 90))


def auc(scores, labels):
    """Area under the ROC curve: fer_tf.apps.evaluate.roc_auc."""
    from fer_tf.apps.evaluate import roc_auc
    return roc_auc(scores, labels)

def extract_genki(archive, folder, limit):
    """The first `limit` GENKI-4K photos (by file name) into `folder`."""
    os.makedirs(folder, exist_ok=True)
    with tarfile.open(archive) as tar:
        photos = sorted((m for m in tar.getmembers() if m.name.lower().endswith(".jpg")),
                        key=lambda m: m.name)[:limit]
        for member in photos:
            with open(os.path.join(folder, os.path.basename(member.name)), "wb") as f:
                f.write(tar.extractfile(member).read())
    return folder
