"""Rebuilt exports of trained runs: the prior-correction and ensemble-weights tools, an export
without the `faces` signature, and the plateau learning-rate schedule driven by the eval
history. The rebuild itself (storage, views, prior correction, ensembles, signatures) is tested
on known random weights in tests/test_rebuild_graph.py."""
import glob
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

from conftest import LENET_NARROW
from fer_tf.serving import export, exported
from fer_tf.training import progress, run
from fer_tf.data import records
from fer_tf.core.errors import FerTfError

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


def test_ten_crop_needs_a_model_trained_on_crops(lenet_export, tmp_path):
    with pytest.raises(FerTfError, match="not trained on crops"):
        export.export(lenet_export, str(tmp_path / "x"), tta="ten_crop")


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
              overrides={"batch_size": 32, **LENET_NARROW, "learning_rate": 0.01, "lr_schedule": "plateau",
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
