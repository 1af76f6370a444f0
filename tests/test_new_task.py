"""The recipe of docs/ARCHITECTURE.md ("A new task"), done inside a test: a task and a model are
registered here — nothing else in the package is touched — and run through the public commands
train -> export -> predict. A branch on a task or model name anywhere in fer-tf would stop it."""
import json

import pytest

from conftest import FACE_PNG
from fer_tf import models
from fer_tf.apps import cli
from fer_tf.models import ModelSpec, blocks
from fer_tf.training import model_fn, receivers, tasks

# A classification task whose best export is chosen by mean per-class accuracy instead of
# accuracy (rare classes count as much as common ones), written with the shared parts.
TOY_TASK = tasks.Task("toy_balanced", "images", tasks.shared_estimator(model_fn.classifier_model_fn),
                      receivers.serving_input_receiver_fn, metric="mean_per_class_accuracy",
                      rebuild="classifier", warm_starts=True)


def build(images, num_classes, is_training, params):
    x = blocks.conv_pool_stages(images, [([(4, 3, "conv1", "bn1")], "pool1")], is_training)
    return blocks.dense_head(x, [8], params["keep_prob"], is_training, num_classes)


TOY_MODEL = ModelSpec(name="toy_net", build=build, normalize=lambda images: images / 255.0,
                      image_size=(48, 48, 1), hparams={"batch_size": 4}, task="toy_balanced",
                      description="a two-layer network of the toy task (tests/test_new_task.py)")


@pytest.fixture
def toy_registered():
    tasks.register(TOY_TASK)                # the recipe's two registration lines
    models.register(TOY_MODEL)
    yield
    tasks.TASKS.pop(TOY_TASK.name)
    models.unregister(TOY_MODEL.name)


def run(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    assert status == 0, out.err
    return out.out


def test_a_task_registered_here_trains_exports_and_predicts(toy_registered, sample_records,
                                                            tmp_path, capsys):
    assert "toy_net" in run(capsys, "models")
    run(capsys, "train", "--model", "toy_net", "--data", sample_records, "--model-dir",
        tmp_path / "run", "--max-steps", 3)
    history = json.loads((tmp_path / "run" / "eval_history.json").read_text())
    assert history and "mean_per_class_accuracy" in json.dumps(history)
    run(capsys, "export", "--model-dir", tmp_path / "run", "--out", tmp_path / "export",
        "--int8", "--tta", "flip")
    run(capsys, "predict", FACE_PNG, "--model", tmp_path / "export", "--no-smile",
        "--format", "jsonl", "--output", tmp_path / "faces.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "faces.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and len(rows[0]["probabilities"]) == 7
    assert abs(sum(rows[0]["probabilities"].values()) - 1) < 1e-4
