"""Multi-worker training through TF_CONFIG on loopback, started by tools/local_cluster.py:
a chief and a worker (MultiWorkerMirroredStrategy), and chief + worker + parameter server."""
import json
import os
import sys

import numpy as np
import pytest
import tensorflow as tf

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import local_cluster  # noqa: E402
from conftest import LENET_NARROW_FLAGS  # noqa: E402


def steps_by_task(model_dir):
    folder = os.path.join(model_dir, "steps")
    return {f[:-5]: json.load(open(os.path.join(folder, f))) for f in sorted(os.listdir(folder))}


def assert_consistent_checkpoint(model_dir, at_least):
    path = tf.train.latest_checkpoint(model_dir)
    reader = tf.train.load_checkpoint(path)
    step = int(reader.get_tensor("global_step"))
    assert step == int(path.rsplit("-", 1)[1]) and step >= at_least
    shapes = reader.get_variable_to_shape_map()
    for name in ("conv1/kernel", "fc1/kernel", "logits/kernel", "bn1/moving_mean"):
        assert name in shapes and np.isfinite(reader.get_tensor(name)).all()


def test_chief_and_worker_multi_worker_mirrored(sample_records, tmp_path):
    model_dir = str(tmp_path / "mw")
    cluster, status = local_cluster.launch(
        ["train", "--data", sample_records, "--model-dir", model_dir, "--max-steps", "10",
         "--strategy", "multi_worker", "--hparams", "batch_size=32", *LENET_NARROW_FLAGS],
        workers=1, logs=str(tmp_path / "logs"))
    assert status == {("chief", 0): 0, ("worker", 0): 0}, open(tmp_path / "logs" / "worker_0.log").read()[-2000:]
    assert all(a.startswith("127.0.0.1:") for v in cluster.values() for a in v)
    steps = steps_by_task(model_dir)
    # Synchronous replicas: both ran every step of the same global step sequence and end with
    # the same weights (two unsynchronised trainers would end with different ones).
    assert steps["chief_0"]["local_steps"] == steps["worker_0"]["local_steps"] == 10
    assert steps["chief_0"]["global_step_at_end"] == steps["worker_0"]["global_step_at_end"] == 10
    assert steps["chief_0"]["weights_fingerprint"] == pytest.approx(
        steps["worker_0"]["weights_fingerprint"], rel=1e-9)
    assert_consistent_checkpoint(model_dir, 10)


def test_chief_worker_and_parameter_server(sample_records, tmp_path):
    model_dir = str(tmp_path / "ps")
    _, status = local_cluster.launch(
        ["train", "--data", sample_records, "--model-dir", model_dir, "--max-steps", "120",
         "--hparams", "batch_size=16"], workers=1, ps=1, logs=str(tmp_path / "logs"))
    assert status[("chief", 0)] == 0 and status[("worker", 0)] == 0
    steps = steps_by_task(model_dir)
    # Asynchronous updates: each process's steps add up to the shared global step (each may
    # run one step past the end while the other finishes it).
    assert steps["chief_0"]["local_steps"] > 0 and steps["worker_0"]["local_steps"] > 0
    total = steps["chief_0"]["local_steps"] + steps["worker_0"]["local_steps"]
    assert 120 <= total <= 120 + 2
    assert max(s["global_step_at_end"] for s in steps.values()) == total
    assert_consistent_checkpoint(model_dir, 120)
