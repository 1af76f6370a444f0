"""Subcommands that other tests reach only through the library, run here as commands (in-process
through `cli.main`): models, export (float16, TTA, TFLite with its agreement check), ensemble,
bottleneck and landmarks."""
import json
import os

import numpy as np
import pytest

from conftest import FACE_PNG
from fer_tf.apps import cli
from fer_tf import models
from fer_tf.serving import export, exported


def command(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    assert status == 0, out.err
    return out.out


def test_models_lists_every_registered_model(capsys):
    listed = [line.split()[0] for line in command(capsys, "models").splitlines()]
    assert listed == models.names()


def test_export_float16_tta_and_tflite(lenet_run, sample_records, tmp_path, capsys):
    out = command(capsys, "export", "--model-dir", lenet_run, "--out", tmp_path / "f16",
                  "--float16", "--tta", "flip")
    assert "float16" in out
    model = exported.ExportedModel(str(tmp_path / "f16"))
    assert model.meta.tta == "flip"
    assert export.weights_size(str(tmp_path / "f16")) < 0.55 * export.weights_size(
        export.export(lenet_run, str(tmp_path / "f32")))
    out = command(capsys, "export", "--model-dir", lenet_run, "--tflite", "--out",
                  tmp_path / "m.tflite", "--check-data", sample_records, "--check-split", "test")
    agreement = float(out.split("top-1 agreement ")[1].split(",")[0])
    assert agreement == 1.0 and (tmp_path / "m.json").exists()


def test_ensemble_command(lenet_export, sample_records, tmp_path, capsys):
    out = command(capsys, "ensemble", lenet_export, lenet_export, "--out", tmp_path / "e",
                  "--weights", "1", "3")
    assert "ensemble of 2" in out
    png = open(FACE_PNG, "rb").read()
    np.testing.assert_allclose(exported.ExportedModel(str(tmp_path / "e")).predict([png]),
                               exported.ExportedModel(lenet_export).predict([png]), atol=1e-6)
    command(capsys, "eval", "--model", tmp_path / "e", "--data", sample_records,
            "--confusion-png", tmp_path / "cm.png")


def test_bottleneck_command(sample_records, tmp_path, capsys):
    out = command(capsys, "bottleneck", "--data", sample_records, "--out", tmp_path / "cache",
                  "--allow-random-init", "--width", "0.0625", "--quiet")
    assert "128-d features" in out and "train 210" in out
    manifest = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    assert manifest["kind"] == "features" and manifest["feature_dim"] == 128


def test_landmarks_command_with_dlib(tmp_path, capsys):
    import cv2
    from test_predict import face_scene
    cv2.imwrite(str(tmp_path / "two.png"), face_scene())
    out = command(capsys, "landmarks", tmp_path / "two.png", "--dlib", "--annotate",
                  tmp_path / "ann")
    assert "2 face(s)" in out
    drawn = cv2.imread(str(tmp_path / "ann" / "two.png"))
    assert drawn is not None and (drawn[..., 1] > 200).sum() > 100      # green points drawn
    assert os.path.exists(tmp_path / "ann" / ".fer_tf_annotations")


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"]])
def test_help_exits_cleanly(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 0 and "usage:" in capsys.readouterr().out
