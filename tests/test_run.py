"""train_and_evaluate end to end: checkpoint, whole-split eval, best export that serves PNG bytes
exactly as the Estimator predicts; resume; the model-dir guards."""
import glob
import os
import shutil

import cv2
import numpy as np
import pytest
import tensorflow as tf

from conftest import LENET_NARROW
from fer_tf.apps import evaluate
from fer_tf.core import outputs
from fer_tf.data import preprocess, records
from fer_tf.training import model_fn, run
from fer_tf.serving import exported
from fer_tf.serving import export as exporting
from fer_tf.core.errors import FerTfError

OVERRIDES = {"batch_size": 32, **LENET_NARROW}


@pytest.fixture(scope="module")
def trained(sample_records, tmp_path_factory):
    model_dir = str(tmp_path_factory.mktemp("run") / "lenet7")
    metrics, export = run.train("lenet7", sample_records, model_dir, overrides=OVERRIDES,
                                max_steps=12, eval_every_epochs=2, log=lambda *_: None)
    return model_dir, metrics, export


def test_leaves_checkpoint_metrics_and_export(trained, sample_records):
    model_dir, metrics, export = trained
    assert tf.train.latest_checkpoint(model_dir).endswith("model.ckpt-12")
    assert metrics["global_step"] == 12
    for key in ("accuracy", "mean_per_class_accuracy", "loss", "recall/happy", "recall/disgust"):
        assert key in metrics
    assert glob.glob(os.path.join(model_dir, "eval", "events.out.tfevents.*"))
    assert exported.is_saved_model(export)
    meta = exported.read_meta(export)
    assert meta.model == "lenet7" and meta.labels.name == "fer7"
    assert open(os.path.join(export, "assets.extra", "labels.txt")).read().split("\n")[0] == "angry"
    # The metadata records the epochs this run made, not the model's default.
    steps_per_epoch = records.read_manifest(sample_records).split_count("train") // 32
    assert meta.hparams["epochs"] == pytest.approx(12 / steps_per_epoch)
    assert "data_dir" not in meta.hparams and "classes" not in meta.hparams   # no plumbing


def test_savedmodel_on_png_bytes_matches_estimator(trained, sample_records):
    model_dir, _, export = trained
    prepared = run.prepare("lenet7", sample_records, OVERRIDES, max_steps=12)
    estimator = tf.estimator.Estimator(model_fn.classifier_model_fn(prepared.run),
                                       model_dir=model_dir, params=prepared.params)
    checkpoint = os.path.join(export, "variables", "variables")
    encoded = [e for batch, _ in records.iter_split(sample_records, "test", 64) for e in batch]

    def predict_input_fn():
        ds = tf.data.Dataset.from_tensor_slices(encoded)
        return ds.map(lambda b: {"image": preprocess.decode_image(b, 48, 48, 1)}).batch(16)

    predicted = list(estimator.predict(predict_input_fn, checkpoint_path=checkpoint))
    served = exported.ExportedModel(export).predict(encoded)
    expected = np.array([p["probabilities"] for p in predicted])
    assert served.shape == expected.shape == (49, 7)
    np.testing.assert_allclose(served, expected, atol=1e-5)
    assert [p["class_names"].decode() for p in predicted][:5] == [
        exported.ExportedModel(export).label_set.classes[i] for i in served.argmax(1)[:5]]


def test_serving_takes_any_size_and_colour(trained):
    _, _, export = trained
    model = exported.ExportedModel(export)
    rgb = tf.io.encode_jpeg(tf.cast(tf.random.uniform([120, 100, 3], 0, 255), tf.uint8)).numpy()
    gray = tf.io.encode_png(tf.cast(tf.random.uniform([48, 48, 1], 0, 255), tf.uint8)).numpy()
    probs = model.predict([rgb, gray])
    assert probs.shape == (2, 7)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_rerun_resumes_from_checkpoint(trained, sample_records, tmp_path):
    # A copy: the shared fixture stays as it was for the tests that read it.
    model_dir = str(tmp_path / "copy")
    shutil.copytree(trained[0], model_dir)
    metrics, _ = run.train("lenet7", sample_records, model_dir, overrides=OVERRIDES,
                           max_steps=18, eval_every_epochs=2, log=lambda *_: None)
    assert metrics["global_step"] == 18
    assert tf.train.latest_checkpoint(model_dir).endswith("model.ckpt-18")


def test_model_dir_of_another_label_set_is_refused(trained, ferplus_records):
    model_dir, _, _ = trained
    with pytest.raises(FerTfError, match="made for label_set fer7, not ferplus8"):
        run.train("lenet7", ferplus_records, model_dir, max_steps=1)


def test_second_trainer_on_same_model_dir_is_refused(tmp_path):
    with run.ModelDirLock(str(tmp_path)):
        with pytest.raises(FerTfError, match=f"in use by another fer-tf train \\(pid {os.getpid()}\\)"):
            with run.ModelDirLock(str(tmp_path)):
                pass
    with run.ModelDirLock(str(tmp_path)):     # released on exit
        pass


def test_eval_reports_and_refuses_other_label_set(trained, sample_records, ferplus_records, tmp_path):
    export = trained[0]          # a model dir resolves to its best export (it may have changed)
    png = str(tmp_path / "cm.png")
    report = evaluate.evaluate(export, sample_records, "test", png=png)
    assert report["count"] == 49 and sum(map(sum, report["confusion"])) == 49
    assert report["accuracy"] == pytest.approx(np.trace(report["confusion"]) / 49)
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(FerTfError, match="label set ferplus8, but the model .* fer7"):
        evaluate.evaluate(export, ferplus_records, "test", png=png)


def test_flip_tta_in_the_graph_averages_the_mirrored_faces(trained, sample_records, tmp_path):
    model = exported.ExportedModel(trained[0])   # the best export (the resume test may replace it)
    encoded = next(records.iter_split(sample_records, "test", 16))[0]
    flipped = [records.encode_png(cv2.imdecode(np.frombuffer(e, np.uint8), 0)[:, ::-1].copy())
               for e in encoded]
    expected = (model.predict(encoded) + model.predict(flipped)) / 2
    assert not np.allclose(expected, model.predict(encoded))   # a trained net is not symmetric
    flip = exported.ExportedModel(exporting.export(trained[0], str(tmp_path / "flip"), tta="flip"))
    np.testing.assert_allclose(flip.predict(encoded), expected, atol=1e-6)
    report = evaluate.evaluate(trained[0], sample_records, "test", png=str(tmp_path / "cm.png"),
                               tta="flip")
    assert report["tta"] == "flip" and report["count"] == 49
    assert "averaged with its mirror image" in evaluate.format_report(report)


def test_votes_loss_needs_votes(sample_records):
    with pytest.raises(FerTfError, match="loss=votes needs FER\\+ votes"):
        run.prepare("lenet7", sample_records, {"loss": "votes"})
    with pytest.raises(FerTfError, match="unknown name\\(s\\) lr"):
        run.prepare("lenet7", sample_records, {"lr": 0.1})


def test_ferplus_votes_loss_trains(ferplus_records, tmp_path):
    metrics, export = run.train("lenet7", ferplus_records, str(tmp_path / "fp"),
                                overrides={**OVERRIDES, "loss": "votes",
                                           "class_weights": "balanced"},
                                max_steps=3, log=lambda *_: None)
    assert metrics["global_step"] == 3 and "recall/contempt" in metrics
    assert exported.ExportedModel(export).label_set.name == "ferplus8"


def test_tensorboard_serves_the_run(trained):
    """`make tensorboard` runs this server: it must read the Estimator's event files."""
    import json
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    model_dir = trained[0]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tensorboard = os.path.join(os.path.dirname(sys.executable), "tensorboard")
    proc = subprocess.Popen([tensorboard, "--logdir", model_dir, "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/data/plugin/scalars/scalars?run=eval&tag=accuracy"
        deadline, points = time.time() + 90, None
        while time.time() < deadline and not points:
            try:
                points = json.load(urllib.request.urlopen(url, timeout=5))
            except (OSError, ValueError):
                time.sleep(1)
        assert points, "TensorBoard did not serve the eval accuracy"
        assert {p[1] for p in points} >= {12}
        tags = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/data/plugin/scalars/tags"))
        assert "learning_rate" in tags["."] and "train_accuracy" in tags["."]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_float16_export_halves_weights_and_predicts_the_same(trained, sample_records, tmp_path):
    from fer_tf.serving import export
    model_dir = trained[0]
    full, half = str(tmp_path / "f32"), str(tmp_path / "f16")
    export.export(model_dir, full)
    export.export(model_dir, half, float16=True)
    assert export.weights_size(half) < 0.55 * export.weights_size(full)
    encoded = [e for batch, _ in records.iter_split(sample_records, "test", 64) for e in batch]
    p32 = exported.ExportedModel(full).predict(encoded)
    p16 = exported.ExportedModel(half).predict(encoded)
    np.testing.assert_allclose(p16, p32, atol=2e-3)
    assert exported.ExportedModel(half).label_set.name == "fer7"


def test_tflite_agrees_with_savedmodel(trained, sample_records, tmp_path):
    from fer_tf.serving import tflite
    path = tflite.convert(trained[0], str(tmp_path / "m.tflite"))
    assert tflite.read_sidecar(path)["image_size"] == [48, 48, 1]
    check = tflite.agreement(path, trained[0], sample_records, "test")
    assert check["faces"] == 49 and check["top1_agreement"] == 1.0
    assert check["max_prob_diff"] < 1e-4


def test_best_export_holds_the_checkpoint_with_the_best_eval_accuracy(sample_records, tmp_path):
    model_dir = str(tmp_path / "run")
    run.train("lenet7", sample_records, model_dir, overrides=OVERRIDES, max_steps=10,
              checkpoint_steps=2, log=lambda *_: None)
    from fer_tf.training import progress
    history = progress.read_history(model_dir)
    assert [h["step"] for h in history] == [2, 4, 6, 8, 10]
    best = max(history, key=lambda h: h["accuracy"])          # the first of equal bests
    reader = tf.train.load_checkpoint(os.path.join(outputs.best_export(model_dir), "variables",
                                                   "variables"))
    assert int(reader.get_tensor("global_step")) == best["step"]


def test_grey_and_colour_copies_of_a_face_get_the_same_probabilities(lenet_export):
    grey = cv2.imread(os.path.join(os.path.dirname(__file__), "data", "face_happy.png"), 0)
    colour = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    model = exported.ExportedModel(lenet_export)
    p = model.predict([records.encode_png(grey), records.encode_png(colour),
                       records.encode_png(cv2.resize(colour, (96, 96)))])
    np.testing.assert_allclose(p[0], p[1], atol=1e-6)
    # Any size: the same answer — the probabilities within 0.02 (resampling moves them a
    # little), the top class wherever it leads by more (a few-step model has near-ties).
    np.testing.assert_allclose(p[2], p[0], atol=0.02)
    top2 = np.sort(p[0])[-2:]
    assert top2[1] - top2[0] <= 0.02 or p[2].argmax() == p[0].argmax()
