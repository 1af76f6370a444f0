"""Rebuilt exports: test-time views in the graph, ensembles, float16 storage cast once, the raw
`faces` signature, and the plateau learning-rate schedule driven by the eval history."""
import glob
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

from fer_tf.serving import export, exported, rebuild
from fer_tf.training import progress, run
from fer_tf.data import records
from fer_tf.core.errors import FerTfError
from fer_tf.core.labels import FERPLUS8

TINY_VGG = {"widths": [8, 8, 8, 8], "fc_units": [16], "batch_size": 32}


@pytest.fixture(scope="module")
def crop_run(sample_records, tmp_path_factory):
    """A tiny VGG trained on 40 px crops of the 48 px faces."""
    model_dir = str(tmp_path_factory.mktemp("vgg") / "run")
    run.train("vgg", sample_records, model_dir, overrides=TINY_VGG, max_steps=4,
              log=lambda *_: None)
    return model_dir


def faces_of(sample_records, n=12):
    encoded = next(records.iter_split(sample_records, "test", n))[0]
    return encoded, [cv2.imdecode(np.frombuffer(e, np.uint8), 0) for e in encoded]


def test_ten_crop_in_the_graph_is_the_mean_of_the_ten_crops(crop_run, sample_records, tmp_path):
    plain = exported.ExportedModel(export.export(crop_run, str(tmp_path / "plain")))
    ten = exported.ExportedModel(export.export(crop_run, str(tmp_path / "ten"), tta="ten_crop"))
    encoded, faces = faces_of(sample_records)
    corners = [(0, 0), (0, 8), (8, 0), (8, 8), (4, 4)]
    by_hand = []
    for face in faces:
        views = []
        for y, x in corners:
            crop = face[y:y + 40, x:x + 40]
            for view in (crop, crop[:, ::-1]):
                # The plain export takes the centre 40x40 of a 48x48 face: put the view there.
                canvas = np.zeros((48, 48), np.uint8)
                canvas[4:44, 4:44] = view
                views.append(records.encode_png(canvas))
        by_hand.append(plain.predict(views).mean(axis=0))
    np.testing.assert_allclose(ten.predict(encoded), np.array(by_hand), atol=1e-5)
    assert not np.allclose(ten.predict(encoded), plain.predict(encoded), atol=1e-4)


def test_ten_crop_needs_a_model_trained_on_crops(lenet_export, tmp_path):
    with pytest.raises(FerTfError, match="not trained on crops"):
        export.export(lenet_export, str(tmp_path / "x"), tta="ten_crop")


def test_ensemble_of_one_is_the_member_and_of_two_is_the_weighted_mean(
        lenet_export, crop_run, sample_records, tmp_path):
    encoded, faces = faces_of(sample_records)
    member = exported.ExportedModel(lenet_export).predict(encoded)
    one = exported.ExportedModel(export.ensemble([lenet_export], str(tmp_path / "one")))
    np.testing.assert_allclose(one.predict(encoded), member, atol=1e-6)
    other = exported.ExportedModel(crop_run).predict(encoded)
    two = exported.ExportedModel(export.ensemble([lenet_export, crop_run], str(tmp_path / "two"),
                                                weights=[3.0, 1.0]))
    np.testing.assert_allclose(two.predict(encoded), (3 * member + other) / 4, atol=1e-6)
    meta = two.meta
    assert meta.model == "ensemble" and [m.model for m in meta.members] == ["lenet7", "vgg"]
    # An ensemble as a member is taken apart: (2 * two + 1 * other) / 3, three networks.
    nested = exported.ExportedModel(export.ensemble([str(tmp_path / "two"), crop_run],
                                                    str(tmp_path / "nested"), weights=[2.0, 1.0]))
    np.testing.assert_allclose(nested.predict(encoded), (2 * (3 * member + other) / 4 + other) / 3,
                               atol=1e-6)
    assert [(m.model, round(m.weight, 4)) for m in nested.meta.members] == [
        ("lenet7", 1.5), ("vgg", 0.5), ("vgg", 1.0)]


def test_ensemble_refuses_mismatched_label_sets(lenet_export, tmp_path):
    other = tmp_path / "ferplus_like"
    shutil.copytree(lenet_export, other)
    meta_path = other / "assets.extra" / "fer_tf.json"
    meta = json.loads(meta_path.read_text())
    meta["label_set"] = FERPLUS8.to_json()
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(FerTfError, match="label set ferplus8 differs"):
        export.ensemble([lenet_export, str(other)], str(tmp_path / "e"))
    assert not os.path.exists(tmp_path / "e")


@pytest.fixture(scope="module")
def skewed_records(tmp_path_factory):
    """The sample with an imbalanced training split (the sample's own is uniform, under which a
    prior correction changes nothing): 30, 4, 20, 30, 10, 30, 15 training faces per class."""
    import gzip
    from conftest import SAMPLE_CSV
    from fer_tf.data import convert
    keep = [30, 4, 20, 30, 10, 30, 15]
    folder = tmp_path_factory.mktemp("skewed")
    with gzip.open(SAMPLE_CSV, "rt") as f:
        header, *rows = f.read().splitlines()
    seen, kept = [0] * 7, [header]
    for row in rows:
        label = int(row.split(",")[0])
        if row.endswith("Training"):
            seen[label] += 1
            if seen[label] > keep[label]:
                continue
        kept.append(row)
    (folder / "skewed.csv").write_text("\n".join(kept) + "\n")
    out = str(folder / "records")
    convert.convert_fer2013(str(folder / "skewed.csv"), out, progress=False)
    assert records.read_manifest(out).split_per_class("train") == keep
    return out


def by_hand_correction(probabilities, records_dir, tau):
    counts = np.array(records.read_manifest(records_dir).split_per_class("train"), float)
    adjusted = probabilities / (counts / counts.sum()) ** tau
    return adjusted / adjusted.sum(axis=1, keepdims=True)


def test_prior_correction_divides_by_the_training_prior_once(lenet_export, crop_run,
                                                            sample_records, skewed_records,
                                                            tmp_path):
    encoded, faces = faces_of(sample_records)
    plain = exported.ExportedModel(lenet_export)
    prior = (0.7, skewed_records)
    fixed = exported.ExportedModel(export.export(lenet_export, str(tmp_path / "c"), prior=prior))
    expected = by_hand_correction(plain.predict(encoded), skewed_records, 0.7)
    assert np.abs(expected - plain.predict(encoded)).max() > 0.01
    np.testing.assert_allclose(fixed.predict(encoded), expected, atol=1e-5)
    np.testing.assert_allclose(fixed.predict_faces(np.stack(faces)[..., None]), expected, atol=1e-5)
    assert fixed.meta.prior_correction["tau"] == 0.7
    # Re-exporting a corrected export keeps the correction once (int8 storage re-rounds the
    # weights, hence the looser tolerance); tau 0 removes it.
    again = exported.ExportedModel(export.export(fixed.path, str(tmp_path / "again")))
    np.testing.assert_allclose(again.predict(encoded), expected, atol=1e-6)
    removed = exported.ExportedModel(export.export(fixed.path, str(tmp_path / "r"),
                                                   prior=(0.0, skewed_records)))
    assert removed.meta.prior_correction is None and "prior_correction" not in removed.meta.to_json()
    np.testing.assert_allclose(removed.predict(encoded), plain.predict(encoded), atol=1e-6)
    # An ensemble corrects the weighted mean, not each member.
    other = exported.ExportedModel(crop_run).predict(encoded)
    two = exported.ExportedModel(export.ensemble([lenet_export, crop_run], str(tmp_path / "e"),
                                                weights=[3.0, 1.0], prior=(1.0, skewed_records)))
    np.testing.assert_allclose(
        two.predict(encoded),
        by_hand_correction((3 * plain.predict(encoded) + other) / 4, skewed_records, 1.0), atol=1e-5)


def test_prior_correction_refuses_other_label_sets_and_corrected_members(
        lenet_export, sample_records, ferplus_records, tmp_path):
    with pytest.raises(FerTfError, match="label set ferplus8 is not the export's fer7"):
        export.export(lenet_export, str(tmp_path / "x"), prior=(0.5, ferplus_records))
    corrected = export.export(lenet_export, str(tmp_path / "c"), prior=(0.5, sample_records))
    with pytest.raises(FerTfError, match="carries a prior correction"):
        export.ensemble([lenet_export, corrected], str(tmp_path / "e"))
    assert not os.path.exists(tmp_path / "x") and not os.path.exists(tmp_path / "e")


def test_prior_correction_tool_picks_the_best_tau_on_public_test(lenet_export, skewed_records,
                                                                 tmp_path):
    tool = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools",
                        "prior_correction.py")
    out = subprocess.run([sys.executable, tool, lenet_export, "--data", skewed_records,
                          "--criterion", "mean_per_class", "--steps", "4"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    rows = [line for line in out if line.startswith("tau ")]
    assert [r.split(":")[0] for r in rows] == ["tau 0.00", "tau 0.25", "tau 0.50", "tau 0.75",
                                              "tau 1.00"]
    mean_class = [float(r.rsplit(" ", 1)[1]) for r in rows]
    assert len(set(rows)) > 1        # the skewed prior moves the figures
    best = out[-1]
    tau = float(best.split("--prior-tau ")[1].split()[0])
    assert abs(float(best.rstrip(")").rsplit(" ", 1)[1]) - max(mean_class)) < 1e-4
    # The printed figures are the corrected export's own on the eval split.
    from fer_tf.apps.evaluate import evaluate
    report = evaluate(export.export(lenet_export, str(tmp_path / "c"), prior=(tau, skewed_records)),
                      skewed_records, "eval", png=str(tmp_path / "c.png"))
    assert abs(report["mean_per_class_accuracy"] - max(mean_class)) < 1e-4


def test_ensemble_weights_tool_prints_the_best_weights_on_public_test(lenet_export, crop_run,
                                                                      sample_records):
    """tools/ensemble_weights.py: the grid's first row is its best weighting, scored by hand from
    the members' eval-split probabilities (ties broken by mean per-class accuracy); with
    --split-half every rule is reported and the last line is the winning rule's choice on the
    whole eval split."""
    import importlib.util
    import itertools
    from fer_tf.apps.evaluate import accuracy_scores, split_probabilities
    tool = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools",
                        "ensemble_weights.py")
    out = subprocess.run([sys.executable, tool, lenet_export, crop_run, "--data", sample_records,
                          "--max-weight", "3", "--split-half", "3"], capture_output=True,
                         text=True, check=True).stdout.splitlines()
    members = [split_probabilities(m, sample_records, "eval")[1:] for m in (lenet_export, crop_run)]
    outputs, labels = [m[0] for m in members], members[0][1]
    scored = [(accuracy_scores((a * outputs[0] + b * outputs[1]) / (a + b), labels), (a, b))
              for a, b in itertools.product(range(1, 4), repeat=2) if np.gcd(a, b) == 1]
    best = max(scored, key=lambda item: item[0])
    first = next(line for line in out if line.startswith("weights "))
    assert first.startswith(f"weights {best[1][0]} {best[1][1]}: PublicTest {best[0][0]:.4f} ")
    assert any(line.startswith("  grid: held-out ") for line in out)
    assert any(line.startswith("  top-2 equal: held-out ") for line in out)
    rule = out[-1].rsplit("rule ", 1)[1].rstrip(")")
    spec = importlib.util.spec_from_file_location("ensemble_weights", tool)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    weights = module.rules(3, None, 2)[rule](outputs, labels)
    assert out[-1].startswith(f"best: --weights {' '.join(map(str, weights))} ")


def test_float16_export_is_half_the_size_same_answers_and_casts_once(lenet_export, sample_records,
                                                                    tmp_path):
    full = export.export(lenet_export, str(tmp_path / "f32"))
    half = export.export(lenet_export, str(tmp_path / "f16"), float16=True)
    assert export.weights_size(half) < 0.55 * export.weights_size(full)
    encoded, _ = faces_of(sample_records, 49)
    a = exported.ExportedModel(full).predict(encoded)
    b = exported.ExportedModel(half).predict(encoded)
    np.testing.assert_allclose(a, b, atol=5e-3)
    # The same top class wherever float32's top two are further apart than that tolerance allows
    # to swap (a model trained for a few steps has near-ties that float16 rounding may flip).
    top2 = np.sort(a, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-2
    assert clear.any() and (a.argmax(1) == b.argmax(1))[clear].all()
    # The call graph reads float32 copies: no Cast of a float16 weight runs per call.
    loaded = tf.saved_model.load(half)
    graph = loaded.signatures["serving_default"].graph
    casts = [op for op in graph.get_operations() if op.type == "Cast"
             and op.inputs[0].dtype == tf.float16]
    assert not casts


def test_int8_export_is_a_quarter_the_size_and_dequantizes_once(lenet_export, sample_records,
                                                                 tmp_path):
    full = export.export(lenet_export, str(tmp_path / "f32"))
    small = export.export(lenet_export, str(tmp_path / "i8"), int8=True)
    assert export.weights_size(small) < 0.3 * export.weights_size(full)
    reader = rebuild.weight_source(small)
    assert reader.get_variable_to_dtype_map()["conv1/kernel"] == tf.int8
    assert reader.get_variable_to_dtype_map()["bn1/gamma"] == tf.float16
    encoded, _ = faces_of(sample_records, 49)
    a = exported.ExportedModel(full).predict(encoded)
    b = exported.ExportedModel(small).predict(encoded)
    # Every probability within 0.03, so a top class that leads by more cannot change; the top
    # class itself is not compared (a few-step model has near-ties that any rounding flips).
    np.testing.assert_allclose(a, b, atol=0.03)
    graph = tf.saved_model.load(small).signatures["serving_default"].graph
    assert not [op for op in graph.get_operations() if op.type == "Cast"
                and op.inputs[0].dtype in (tf.int8, tf.float16)]
    # Re-exported from the int8 export (read back as float), the weights stay the same.
    again = export.export(small, str(tmp_path / "again"), int8=True)
    np.testing.assert_array_equal(rebuild.weight_source(again).get_tensor("conv1/kernel"),
                                  reader.get_tensor("conv1/kernel"))
    with pytest.raises(FerTfError, match="choose one"):
        export.export(lenet_export, str(tmp_path / "both"), float16=True, int8=True)


def test_quantize_keeps_each_channel_within_half_a_step():
    weights = np.random.RandomState(0).normal(size=(3, 3, 4, 5)).astype(np.float32)
    weights[..., 2] = 0.0                                    # an all-zero channel
    values, scale = rebuild.quantize(weights)
    assert values.dtype == np.int8 and scale.shape == (5,) and np.abs(values).max() == 127
    error = np.abs(values * scale - weights)
    assert (error <= scale / 2 + 1e-7).all() and not values[..., 2].any()


def test_faces_signature_agrees_with_the_bytes_signature(lenet_export, sample_records, tmp_path):
    rebuilt = export.export(lenet_export, str(tmp_path / "e"))
    encoded, faces = faces_of(sample_records)
    loaded = tf.saved_model.load(rebuilt)
    from_bytes = loaded.signatures["serving_default"](
        image_bytes=tf.constant(list(encoded)))["probabilities"].numpy()
    from_faces = loaded.signatures["faces"](
        faces=tf.constant(np.stack(faces)[..., None]))["probabilities"].numpy()
    np.testing.assert_allclose(from_faces, from_bytes, atol=1e-6)


def test_plateau_drops_count_stalls():
    history = [{"step": i, "accuracy": a} for i, a in enumerate([.3, .4, .4, .39, .5, .5, .5, .5])]
    assert progress.plateau_drops(history, patience=2) == 2
    assert progress.plateau_drops(history, patience=5) == 0
    nme = [{"step": i, "nme": v} for i, v in enumerate([.1, .09, .2, .2])]
    assert progress.plateau_drops(nme, patience=2, metric="nme", higher=False) == 1


def test_plateau_schedule_feeds_the_rate_the_eval_history_implies(sample_records, tmp_path):
    """A run resumed after three stalled evaluations (patience 1: two drops) trains at a quarter
    of the base rate — read back from its training summaries — and appends its own evals."""
    model_dir = tmp_path / "run"
    model_dir.mkdir()
    stalled = [{"step": 0, "accuracy": 0.5}, {"step": 1, "accuracy": 0.5},
               {"step": 2, "accuracy": 0.4}]
    (model_dir / progress.HISTORY).write_text(json.dumps(stalled))
    run.train("lenet7", sample_records, str(model_dir), max_steps=4, checkpoint_steps=2,
              overrides={"batch_size": 32, "learning_rate": 0.01, "lr_schedule": "plateau",
                         "plateau_patience": 1, "plateau_factor": 0.5},
              log=lambda *_: None)
    rates = {}
    for path in glob.glob(str(model_dir / "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == "learning_rate":
                    rates[event.step] = value.simple_value
    assert rates and rates[min(rates)] == pytest.approx(0.01 * 0.25)
    history = progress.read_history(str(model_dir))
    assert [h["step"] for h in history] == [0, 1, 2, 4]     # step 2's entry is the new eval


def test_predict_faces_without_the_faces_signature_encodes_them(lenet_run, lenet_export,
                                                                sample_records):
    """A model dir's best export (made by the Estimator) has only image_bytes; a rebuilt export
    has both: predict_faces gives the same probabilities either way, grey or colour."""
    _, faces = faces_of(sample_records)
    grey = np.stack(faces)[..., None]
    old, new = exported.ExportedModel(lenet_run), exported.ExportedModel(lenet_export)
    assert "faces" not in old._signatures and "faces" in new._signatures
    np.testing.assert_allclose(old.predict_faces(grey), new.predict_faces(grey), atol=1e-5)
