"""Training on your own photos: the folder and csv converters on tiny generated photo sets (a
photo without a face, an unreadable file, an unknown label), a model trained on them predicting
the user's classes, and `--init-from` restoring every layer but a mismatched classifier."""
import json
import os

import cv2
import numpy as np
import pytest
import tensorflow as tf

from conftest import FACE_PNG, LENET_NARROW_FLAGS
from fer_tf.apps import cli
from fer_tf.data import records


def photo(kind, i):
    """A 260x260 photo with one upscaled FER2013 face (mirrored for 'sad'), a little brighter
    with i, so every photo differs."""
    face = cv2.resize(cv2.imread(FACE_PNG, 0), (170, 170), interpolation=cv2.INTER_CUBIC)
    canvas = np.full((260, 260), 120, np.uint8)
    canvas[40:210, 45:215] = face if kind == "happy" else cv2.flip(face, 1)
    return np.clip(canvas.astype(int) + 2 * i, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos") / "mine"
    for kind in ("happy", "sad"):
        (root / kind).mkdir(parents=True)
        for i in range(12):
            cv2.imwrite(str(root / kind / f"{i:02d}.png"), photo(kind, i))
    cv2.imwrite(str(root / "sad" / "wall.png"), np.full((120, 120), 90, np.uint8))   # no face
    (root / "sad" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    (root / "happy" / "notes.txt").write_text("not a photo")
    (root / "surprise").mkdir()
    cv2.imwrite(str(root / "surprise" / "00.png"), photo("happy", 0))
    return root


def run_cli(*argv):
    try:
        return cli.main([str(a) for a in argv])
    except SystemExit as e:          # argparse's usage errors
        return e.code


@pytest.fixture(scope="module")
def folder_records(photo_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("own") / "records"
    assert run_cli("records", photo_folder, "--dataset", "folder", "--out", out,
                   "--classes", "happy,sad", "--quiet") == 0
    return str(out)


def test_folder_converter_lists_what_it_left_out(folder_records, photo_folder, capsys):
    manifest = records.read_manifest(folder_records)
    assert manifest.classes == ["happy", "sad"]
    assert manifest.labels.name.startswith("custom-")
    assert sum(v.count for v in manifest.splits.values()) == 24
    assert all(manifest.splits[s].count > 0 for s in ("train", "eval", "test"))
    assert [sum(v.per_class[k] for v in manifest.splits.values()) for k in (0, 1)] == [12, 12]
    found = manifest.extra["faces"]
    assert found["detection_failed"] == [str(photo_folder / "sad" / "wall.png")]
    assert found["unreadable"][0].startswith(str(photo_folder / "sad" / "broken.jpg"))
    left_out = " ".join(found["left_out"])
    assert "notes.txt" in left_out and "'surprise' is not in --classes" in left_out


def test_csv_converter_keeps_given_splits_and_reports_bad_rows(photo_folder, tmp_path, capsys):
    lines = ["path,label,split"]
    for kind, split_of in (("happy", "train"), ("sad", "train")):
        for i in range(12):
            split = split_of if i < 8 else ("eval" if i < 10 else "test")
            lines.append(f"{photo_folder / kind / f'{i:02d}.png'},{kind},{split}")
    lines += [f"{photo_folder / 'surprise' / '00.png'},surprise,train",      # unknown label
              "missing.png,happy,train",                                     # no such file
              f"{photo_folder / 'happy' / '00.png'},happy,validation",       # bad split
              "just-one-value"]
    table = tmp_path / "labels.csv"
    table.write_text("\n".join(lines) + "\n")
    out = tmp_path / "rec"
    assert run_cli("records", table, "--dataset", "csv", "--out", out, "--classes", "happy,sad",
                   "--quiet") == 0
    err = capsys.readouterr().err
    assert f"{table}:26: label 'surprise' is not one of happy, sad" in err
    assert f"{table}:27:" in err and "no such file" in err
    assert f"{table}:28: split 'validation'" in err and f"{table}:29: expected path,label" in err
    manifest = records.read_manifest(str(out))
    assert {s: v.count for s, v in manifest.splits.items()} == {"train": 16, "eval": 4, "test": 4}
    assert manifest.options["split"] == "csv"


def test_converter_errors_are_one_line(photo_folder, tmp_path, capsys):
    table = tmp_path / "mixed.csv"
    table.write_text(f"{photo_folder / 'happy' / '00.png'},happy,train\n"
                     f"{photo_folder / 'sad' / '00.png'},sad\n")
    assert run_cli("records", table, "--dataset", "csv", "--out", tmp_path / "o", "--quiet") == 1
    assert run_cli("records", photo_folder / "happy" / "00.png", "--dataset", "folder",
                   "--out", tmp_path / "o", "--quiet") == 1
    assert run_cli("records", photo_folder, "--dataset", "folder", "--out", tmp_path / "o",
                   "--classes", "happy") == 2
    assert run_cli("records", photo_folder, "--dataset", "folder",
                   "--out", photo_folder / "records") == 1          # inside the walked input
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and "Traceback" not in "".join(err)
    assert "some rows give a split" in err[0] and "not a folder" in err[1]
    assert "two or more distinct class names" in err[2]
    assert not os.path.exists(tmp_path / "o") and not os.path.exists(photo_folder / "records")


def test_a_model_trained_on_own_photos_predicts_their_classes(folder_records, photo_folder,
                                                                 tmp_path, capsys):
    model_dir = tmp_path / "run"
    assert run_cli("train", "--model", "lenet7", "--data", folder_records, "--model-dir",
                   model_dir, "--max-steps", "2", "--hparams", "batch_size=8", *LENET_NARROW_FLAGS) == 0
    capsys.readouterr()
    out = tmp_path / "p.jsonl"
    assert run_cli("predict", photo_folder / "happy" / "03.png", "--model", model_dir,
                   "--format", "jsonl", "--output", out, "--no-smile") == 0
    row = json.loads(out.read_text())
    assert set(row["probabilities"]) == {"happy", "sad"} and row["label"] in ("happy", "sad")


def weights(checkpoint):
    reader = tf.train.load_checkpoint(checkpoint)
    return {n: reader.get_tensor(n).astype(np.float32)
            for n in reader.get_variable_to_shape_map()}


@pytest.mark.parametrize("data", ["own", "fer2013"])
def test_init_from_restores_all_but_a_mismatched_classifier(data, folder_records, sample_records,
                                                            lenet_export, tmp_path, capsys):
    """One step at a negligible learning rate: every restored kernel still equals the export's;
    the classifier for two classes instead of seven starts fresh."""
    model_dir = tmp_path / "run"
    assert run_cli("train", "--model", "lenet7", "--data",
                   folder_records if data == "own" else sample_records, "--model-dir", model_dir,
                   "--max-steps", "1", "--init-from", lenet_export,
                   "--hparams", "batch_size=8", "learning_rate=1e-9", *LENET_NARROW_FLAGS) == 0
    shown = capsys.readouterr().out
    source = weights(os.path.join(lenet_export, "variables", "variables"))
    trained = weights(tf.train.latest_checkpoint(str(model_dir)))
    kernels = [n for n in source if n.endswith("kernel") and not n.startswith("logits")]
    assert len(kernels) == 5                   # conv1-3, fc1-2
    for name in kernels + ["bn1/gamma", "fc1_bn/beta"]:
        np.testing.assert_allclose(trained[name], source[name], atol=1e-4, err_msg=name)
    if data == "own":
        assert trained["logits/kernel"].shape == (64, 2)
        assert "25 of 27 tensors restored; new: logits/bias, logits/kernel" in shown
    else:
        np.testing.assert_allclose(trained["logits/kernel"], source["logits/kernel"], atol=1e-4)
        assert "27 of 27 tensors restored" in shown


def test_init_from_without_model_trains_the_exports_architecture(folder_records, tmp_path, capsys):
    """`fer-tf train --init-from models/default` (the README's fine-tuning command) needs no
    --model: the shipped default's architecture is trained, not the CLI's lenet7 default."""
    import json
    from fer_tf.core.outputs import RUN_META
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    default = os.path.join(here, "models", "default")
    model_dir = tmp_path / "run"
    assert run_cli("train", "--data", folder_records, "--model-dir", model_dir, "--max-steps", "1",
                   "--init-from", default, "--hparams", "batch_size=8") == 0
    architecture = json.load(open(os.path.join(default, "assets.extra", "fer_tf.json")))["model"]
    assert json.load(open(model_dir / RUN_META))["model"] == architecture
    assert "tensors restored; new: logits/bias, logits/kernel" in capsys.readouterr().out


def test_init_from_refuses_another_architecture_or_an_ensemble(sample_records, lenet_export,
                                                               tmp_path, capsys):
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    assert run_cli("train", "--model", "vgg", "--data", sample_records, "--model-dir",
                   tmp_path / "a", "--max-steps", "1", "--init-from", lenet_export) == 1
    assert run_cli("train", "--model", "vgg", "--data", sample_records, "--model-dir",
                   tmp_path / "b", "--max-steps", "1", "--init-from",
                   os.path.join(here, "models", "ensemble_fer2013")) == 1
    assert run_cli("train", "--model", "lenet7", "--data", sample_records, "--model-dir",
                   tmp_path / "c", "--max-steps", "1", "--init-from", tmp_path / "nothing") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "a lenet7 model; train --model lenet7" in err[0]
    assert "an ensemble" in err[1] and "no such directory" in err[2]
    assert not any(os.path.exists(tmp_path / d / "checkpoint") for d in "abc")
