"""Measurements shared by the bench scripts."""
import shutil
import tempfile
import time


def estimator_rate(model, data_dir, steps, batch_size=64):
    """Training images/s of a registered model through Estimator + input_fn (augmentation on)."""
    import tensorflow as tf
    from fer_tf import heads, inputs, logs, run
    logs.setup()
    _, _, _, params = run.prepare(model, data_dir, {"batch_size": batch_size})
    params.update(max_steps=10**6, log_every=10**6)
    model_dir = tempfile.mkdtemp(prefix="bench_est_")
    config = tf.estimator.RunConfig(model_dir=model_dir, save_checkpoints_steps=10**6,
                                    save_summary_steps=100, log_step_count_steps=10**6)
    est = tf.estimator.Estimator(heads.classifier_model_fn, config=config, params=params)
    train_input = lambda: inputs.input_fn(tf.estimator.ModeKeys.TRAIN, params)
    est.train(train_input, steps=10)        # graph build, first checkpoint, warm-up
    start = time.perf_counter()
    est.train(train_input, steps=steps)     # includes the restore, as a resumed run would
    seconds = time.perf_counter() - start
    shutil.rmtree(model_dir, ignore_errors=True)
    return steps * batch_size / seconds


def savedmodel_latency(export_dir, encoded, repeats=100):
    """Median and p90 milliseconds of one-image calls to an export's serving signature."""
    import numpy as np
    from fer_tf import serving
    model = serving.ExportedModel(export_dir)
    for _ in range(5):
        model.predict([encoded])
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict([encoded])
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times)), float(np.percentile(times, 90))
