"""Knowledge distillation: `fer-tf soft-labels` writes a teacher's probabilities for every face of
a split, keyed by source row; `train --teacher` looks them up per face and trains against them."""
import numpy as np
import pytest

from conftest import LENET_NARROW
from fer_tf.apps import distill
from fer_tf.core import labels
from fer_tf.data import records, soft_labels
from fer_tf.core.errors import FerTfError
from fer_tf.serving import exported
from fer_tf.training import run


def test_soft_labels_cover_the_split_with_the_teachers_probabilities(sample_records, lenet_export,
                                                                   tmp_path):
    out = str(tmp_path / "teacher.npz")
    meta = distill.label_split(lenet_export, sample_records, "test", out)
    manifest = records.read_manifest(sample_records)
    assert meta["count"] == manifest.split_count("test")
    with np.load(out) as data:
        rows, probabilities = data["rows"], data["probabilities"]
    assert len(set(rows.tolist())) == len(rows) == meta["count"]
    # The same probabilities the export gives those faces, in the rows' order.
    encoded, _, batch_rows = next(records.iter_split(sample_records, "test", 1000, rows=True))
    expected = exported.ExportedModel(lenet_export).predict(encoded)
    order = {r: i for i, r in enumerate(rows.tolist())}
    np.testing.assert_allclose(probabilities[[order[r] for r in batch_rows.tolist()]], expected,
                               atol=1e-5)
    table = soft_labels.lookup_table(out)
    np.testing.assert_allclose(table[rows], probabilities)
    assert (table[np.setdiff1d(np.arange(len(table)), rows)] == -1).all()


def write_constant_teacher(sample_records, path, class_index, split="train"):
    manifest = records.read_manifest(sample_records)
    rows = np.concatenate([r for _, _, r in records.iter_split(sample_records, split, 1000,
                                                                rows=True)])
    probabilities = np.zeros((len(rows), 7), np.float32)
    probabilities[:, class_index] = 1.0
    soft_labels.write(path, rows, probabilities, manifest.labels,
                      sample_records, split, "constant")
    return path


def test_a_teacher_pulls_the_student_to_its_labels(sample_records, tmp_path):
    """A teacher that calls every face 'surprise' (a minority class of the sample) and the whole
    loss on it: the student predicts surprise for (nearly) every face. Without the lookup
    wired into the loss, it would follow the hard labels instead."""
    surprise = labels.FER7.classes.index("surprise")
    manifest = records.read_manifest(sample_records)
    per_class = manifest.split_per_class("train")
    assert per_class[surprise] < 0.3 * sum(per_class)
    teacher = write_constant_teacher(sample_records, str(tmp_path / "t.npz"), surprise)
    model_dir = str(tmp_path / "run")
    # One evaluation, at the end: the best export is then the last weights, not an early
    # checkpoint that happened to score better on the hard labels.
    _, export = run.train("lenet7", sample_records, model_dir, teacher=teacher, max_steps=30,
                          eval_every_epochs=100,
                          overrides={"batch_size": 32, **LENET_NARROW, "distill_weight": 1.0,
                                     "learning_rate": 0.003},
                          log=lambda *a: None)
    encoded = [e for batch, _ in records.iter_split(sample_records, "test", 256) for e in batch]
    predicted = exported.ExportedModel(export).predict(encoded).argmax(axis=1)
    assert (predicted == surprise).mean() > 0.9


def test_a_teacher_for_another_split_is_refused_before_work(sample_records, tmp_path):
    teacher = write_constant_teacher(sample_records, str(tmp_path / "t.npz"), 0, split="test")
    with pytest.raises(FerTfError, match=r"--teacher .*made for split 'test'.*trains on 'train'"):
        run.prepare("lenet7", sample_records, teacher=teacher)
    with pytest.raises(FerTfError, match="distillation needs a classifier"):
        run.prepare("vggface2", sample_records, teacher=teacher)
