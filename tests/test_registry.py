"""Every registered model, through its task: builds, trains two steps on tiny records of the kind
its task reads, exports the way `fer-tf export` does, reloads and serves its signature. Adding a
model file adds it here (a very slow one may add a small size to SMALL)."""
import cv2
import numpy as np
import pytest

from conftest import FACE_PNG
from fer_tf import models
from fer_tf.data import convert, records
from fer_tf.serving import export, exported, rebuild
from fer_tf.training import bottleneck, run, tasks

# Thinner variants of the big models, so that two steps take seconds (same names and layout).
SMALL = {
    "clique": {"clique_k": 8, "clique_nodes": 3},
    "vgg": {"widths": [8, 8, 8, 8], "fc_units": [16]},
    "landmarks": {"width": 0.25, "dense_units": 32},
    "landmarks_hm": {"width": 0.25},
    "vggface2": {"width": 0.0625},
    "vggface2_head": {"width": 0.0625},
}


@pytest.fixture(scope="module")
def task_records(sample_records, tmp_path_factory):
    """Record folders of every kind a task reads, made once for the module."""
    work = tmp_path_factory.mktemp("registry")
    from test_landmarks import synthetic_archive
    archive = str(work / "lm.tar.gz")
    synthetic_archive(archive)
    landmarks = convert.convert_landmarks(archive, str(work / "landmarks"), val_fraction=0.25,
                                          seed=1, progress=False, log=lambda *_: None)
    assert landmarks.splits["train"].count > 0
    bottleneck.cache_features(sample_records, str(work / "features"), allow_random_init=True,
                              width=SMALL["vggface2_head"]["width"], progress=False,
                              log=lambda *_: None)
    return {"images": sample_records, "landmarks": str(work / "landmarks"),
            "features": str(work / "features")}


@pytest.mark.parametrize("name", models.names())
def test_trains_exports_and_serves(name, task_records, tmp_path):
    spec = models.get(name)
    task = tasks.of(spec)
    data = task_records[task.records]
    overrides = {"batch_size": 4, **SMALL.get(name, {})}
    metrics, best = run.train(name, data, str(tmp_path / "run"), overrides=overrides,
                              max_steps=2, allow_random_init=True, log=lambda *_: None)
    assert metrics["global_step"] == 2 and task.metric in metrics
    out = str(tmp_path / "export")
    if task.receiver is None:            # a head on cached features: assembled with its base
        assert best is None
        export.assemble(str(tmp_path / "run"), out, allow_random_init=True,
                                 log=lambda *_: None)
    else:
        export.export(str(tmp_path / "run"), out)
    png = open(FACE_PNG, "rb").read()
    kind = rebuild.kind_of(exported.read_meta(out))
    model = (kind.client if kind else exported.ExportedModel)(out)   # Keras exports: as they are
    if isinstance(model, exported.LandmarkModel):
        points = model.points(png, [0, 0, 47, 47])
        assert points.shape == (68, 2) and np.isfinite(points).all()
        # The rebuilt export's batched `crops` call gives the same points (PNG: same pixels).
        rgb = cv2.cvtColor(cv2.imread(FACE_PNG), cv2.COLOR_BGR2RGB)
        np.testing.assert_allclose(model.points_in(rgb, [[0, 0, 47, 47]])[0], points, atol=0.05)
        return
    probabilities = model.predict([png, png])
    label_set = records.read_manifest(data).labels
    assert probabilities.shape == (2, label_set.num_classes)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
