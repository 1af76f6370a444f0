"""Bad input across every subcommand, in-process through `cli.main(argv)`: each case checks the
exit status, that stderr is one line naming the flag or file (no traceback), and — by hashing
every file that existed before the run — that nothing pre-existing was changed or deleted."""
import gzip
import hashlib
import os
import shutil

import cv2
import numpy as np
import pytest

from conftest import FACE_PNG, SAMPLE_CSV

from fer_tf.apps import cli

UNWRITABLE = "/sys/fer_tf_cannot_write_here"   # refused even to root (sysfs)


@pytest.fixture
def world(tmp_path, monkeypatch, sample_records, lenet_run, lenet_export):
    """A user's tree: their own files, copies of the command inputs, a fer-tf record folder,
    model dir and export; the working directory and $HOME hold user files too."""
    user = tmp_path / "user"
    (user / "sub").mkdir(parents=True)
    (user / "notes.txt").write_text("my notes\n")
    (user / "sub" / "data.bin").write_bytes(os.urandom(256))
    cv2.imwrite(str(user / "photo.png"), np.full((20, 20, 3), 128, np.uint8))   # not fer-tf's
    faces = tmp_path / "in" / "faces"
    faces.mkdir(parents=True)
    shutil.copy(FACE_PNG, faces / "face.png")
    shutil.copy(SAMPLE_CSV, user / "fer.csv.gz")
    # A user's folders that merely look like fer-tf's outputs (common names, not fer-tf's markers).
    lookalike = tmp_path / "lookalike"
    (lookalike / "steps").mkdir(parents=True)
    (lookalike / "labels.txt").write_text("cat\ndog\n")
    (lookalike / "steps" / "plan.json").write_text('{"walk": 3}')
    fake_export = tmp_path / "fake_export"
    (fake_export / "assets.extra").mkdir(parents=True)
    (fake_export / "saved_model.pb").write_bytes(b"mine")
    (fake_export / "assets.extra" / "fer_tf.json").write_text('["not", "fer-tf metadata"]')
    fake_records = tmp_path / "fake_records"
    fake_records.mkdir()
    (fake_records / "manifest.json").write_text('{"format": "my-own/1"}')
    for name, source in (("records", sample_records), ("run", lenet_run), ("export", lenet_export)):
        shutil.copytree(source, tmp_path / name)
    shutil.copytree(lenet_export, tmp_path / "broken")        # an export cut short in a copy
    graph = tmp_path / "broken" / "saved_model.pb"
    graph.write_bytes(graph.read_bytes()[:graph.stat().st_size // 2])
    home = tmp_path / "home"
    home.mkdir()
    (home / ".profile").write_text("export X=1\n")
    work = tmp_path / "work"
    work.mkdir()
    (work / "important.doc").write_text("do not lose\n")
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(home))
    return {"tmp": str(tmp_path), "user": str(user), "csv": SAMPLE_CSV, "face": str(faces / "face.png"),
            "faces": str(faces), "records": str(tmp_path / "records"), "run": str(tmp_path / "run"),
            "export": str(tmp_path / "export"), "lookalike": str(lookalike),
            "fake_export": str(fake_export), "fake_records": str(fake_records), "broken": str(tmp_path / "broken"), "ro": UNWRITABLE, "home": str(home)}


def tree_hashes(root):
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


def run_cli(argv, capsys):
    status = cli.main(argv)
    captured = capsys.readouterr()
    return status, captured.err


# (argv with {placeholders}, exit status, fragments the one stderr line must contain)
CASES = {
    # records: output safety
    "records-out-file": ("records {csv} --out {user}/notes.txt", 1, ["--out", "notes.txt", "is a file"]),
    "records-out-user-folder": ("records {csv} --out {user}", 1, ["--out", "did not write"]),
    "records-out-cwd": ("records {csv} --out .", 1, ["--out .", "current directory"]),
    "records-out-home": ("records {csv} --out {home}", 1, ["home directory"]),
    "records-out-contains-input": ("records {user}/fer.csv.gz --out {user}", 1, ["contains the input"]),
    "records-out-is-input": ("records {user}/fer.csv.gz --out {user}/fer.csv.gz", 1, ["is the input"]),
    "records-out-export": ("records {csv} --out {export}", 1, ["SavedModel export"]),
    "records-out-model-dir": ("records {csv} --out {run}", 1, ["training model dir"]),
    "records-out-records-lookalike": ("records {csv} --out {fake_records}", 1, ["--out", "did not write"]),
    "train-model-dir-lookalike": ("train --data {records} --model-dir {lookalike} --max-steps 1", 1, ["--model-dir {lookalike}", "did not write"]),
    "train-model-dir-lookalike-labels": ("train --data {records} --model-dir {lookalike}/steps --max-steps 1", 1, ["--model-dir", "did not write"]),
    "export-out-export-lookalike": ("export --model-dir {run} --out {fake_export}", 1, ["--out", "did not write"]),
    "records-out-under-file": ("records {csv} --out {user}/notes.txt/r", 1, ["notes.txt is a file"]),
    "records-out-unwritable": ("records {csv} --out {ro}/r", 1, ["--out", "cannot write"]),
    # records: flag values
    "records-size-0": ("records {csv} --out {tmp}/r --size 0", 2, ["--size", "'0'"]),
    "records-size-huge": ("records {csv} --out {tmp}/r --size 5000", 2, ["--size"]),
    "records-shards-0": ("records {csv} --out {tmp}/r --shards 0", 2, ["--shards"]),
    "records-folds-1": ("records {csv} --out {tmp}/r --folds 1", 2, ["--folds"]),
    "records-seed-negative": ("records {csv} --out {tmp}/r --seed -1", 2, ["--seed"]),
    "records-channels-2": ("records {csv} --out {tmp}/r --channels 2", 2, ["--channels"]),
    "records-dataset-unknown": ("records {csv} --out {tmp}/r --dataset imagenet", 2, ["--dataset"]),
    "records-split-unknown": ("records {csv} --out {tmp}/r --split random", 2, ["--split"]),
    "records-missing-csv": ("records {tmp}/none.csv --out {tmp}/r", 1, ["none.csv", "no such file"]),
    "records-csv-is-folder": ("records {user} --out {tmp}/r", 1, ["cannot read"]),
    "records-ferplus-missing": ("records {csv} --ferplus {tmp}/no.csv --out {tmp}/r", 1, ["no.csv"]),
    # train
    "train-epochs-negative": ("train --data {records} --model-dir {tmp}/m --epochs -3", 2, ["--epochs", "'-3'"]),
    "train-epochs-0": ("train --data {records} --model-dir {tmp}/m --epochs 0", 2, ["--epochs"]),
    "train-epochs-text": ("train --data {records} --model-dir {tmp}/m --epochs ten", 2, ["--epochs"]),
    "train-eval-every-0": ("train --data {records} --model-dir {tmp}/m --eval-every 0", 2, ["--eval-every"]),
    "train-checkpoint-steps-0": ("train --data {records} --model-dir {tmp}/m --checkpoint-steps 0", 2, ["--checkpoint-steps"]),
    "train-max-steps-0": ("train --data {records} --model-dir {tmp}/m --max-steps 0", 2, ["--max-steps"]),
    "train-strategy-unknown": ("train --data {records} --model-dir {tmp}/m --strategy horovod", 2, ["--strategy"]),
    "train-batch-size-0": ("train --data {records} --model-dir {tmp}/m --hparams batch_size=0", 2, ["batch_size=0"]),
    "train-batch-size-negative": ("train --data {records} --model-dir {tmp}/m --hparams batch_size=-5", 2, ["batch_size=-5"]),
    "train-batch-size-float": ("train --data {records} --model-dir {tmp}/m --hparams batch_size=6.5", 2, ["batch_size"]),
    "train-keep-prob-high": ("train --data {records} --model-dir {tmp}/m --hparams keep_prob=1.7", 2, ["keep_prob=1.7", "<= 1"]),
    "train-keep-prob-0": ("train --data {records} --model-dir {tmp}/m --hparams keep_prob=0", 2, ["keep_prob"]),
    "train-lr-text": ("train --data {records} --model-dir {tmp}/m --hparams learning_rate=fast", 2, ["learning_rate='fast'"]),
    "train-lr-negative": ("train --data {records} --model-dir {tmp}/m --hparams learning_rate=-1", 2, ["learning_rate"]),
    "train-lr-nan": ("train --data {records} --model-dir {tmp}/m --hparams learning_rate=nan", 2, ["learning_rate"]),
    "train-optimizer-unknown": ("train --data {records} --model-dir {tmp}/m --hparams optimizer=adamw", 2, ["optimizer", "one of"]),
    "train-schedule-unknown": ("train --data {records} --model-dir {tmp}/m --hparams lr_schedule=linear", 2, ["lr_schedule"]),
    "train-smoothing-1": ("train --data {records} --model-dir {tmp}/m --hparams label_smoothing=1.0", 2, ["label_smoothing"]),
    "train-filters-zero": ("train --data {records} --model-dir {tmp}/m --hparams filters=[0,8]", 2, ["filters"]),
    "train-filters-empty": ("train --data {records} --model-dir {tmp}/m --hparams filters=[]", 2, ["filters"]),
    "train-momentum-high": ("train --data {records} --model-dir {tmp}/m --hparams momentum=1.5", 2, ["momentum"]),
    "train-weight-decay-negative": ("train --data {records} --model-dir {tmp}/m --hparams weight_decay=-1", 2, ["weight_decay"]),
    "train-augment-text": ("train --data {records} --model-dir {tmp}/m --hparams augment=maybe", 2, ["augment"]),
    "train-crop-too-big": ("train --data {records} --model-dir {tmp}/m --hparams crop_size=48", 2, ["crop_size=48"]),
    "train-ten-crop-without-crops": ("train --data {records} --model-dir {tmp}/m --hparams tta=ten_crop", 2, ["tta=ten_crop"]),
    "train-epochs-hparam-fraction": ("train --data {records} --model-dir {tmp}/m --hparams epochs=2.5", 2, ["epochs"]),
    "train-hparam-unknown": ("train --data {records} --model-dir {tmp}/m --hparams learning_rat=0.1", 2, ["unknown name(s) learning_rat"]),
    "train-hparam-no-equals": ("train --data {records} --model-dir {tmp}/m --hparams keep_prob", 2, ["--hparams", "name=value"]),
    "train-votes-without-votes": ("train --data {records} --model-dir {tmp}/m --hparams loss=votes", 1, ["loss=votes", "votes"]),
    "train-model-unknown": ("train --model resnet9000 --data {records} --model-dir {tmp}/m", 2, ["--model", "resnet9000"]),
    "train-data-missing": ("train --data {tmp}/nothing --model-dir {tmp}/m", 1, ["nothing"]),
    "train-model-dir-user-folder": ("train --data {records} --model-dir {user}", 1, ["--model-dir", "did not write"]),
    "train-model-dir-file": ("train --data {records} --model-dir {user}/notes.txt", 1, ["--model-dir", "is a file"]),
    "train-model-dir-cwd": ("train --data {records} --model-dir .", 1, ["--model-dir", "current directory"]),
    "train-model-dir-records": ("train --data {records} --model-dir {records}", 1, ["--model-dir", "is the input"]),
    "train-model-dir-export": ("train --data {records} --model-dir {export}", 1, ["--model-dir", "SavedModel export"]),
    "train-model-dir-unwritable": ("train --data {records} --model-dir {ro}/m", 1, ["--model-dir", "cannot write"]),
    # cv
    "cv-folds-1": ("cv --data {records} --folds 1", 2, ["--folds"]),
    "cv-epochs-0": ("cv --data {records} --epochs 0", 2, ["--epochs"]),
    "cv-eval-every-0": ("cv --data {records} --eval-every 0", 2, ["--eval-every"]),
    "cv-model-dir-user": ("cv --data {records} --model-dir {user}", 1, ["--model-dir", "did not write"]),
    "cv-records-without-folds": ("cv --model lenet7 --data {records} --model-dir {tmp}/cv", 1, ["without folds"]),
    # eval
    "eval-batch-size-0": ("eval --model {export} --data {records} --batch-size 0", 2, ["--batch-size"]),
    "eval-split-unknown": ("eval --model {export} --data {records} --split valid", 1, ["--split valid", "no split 'valid'", "train"]),
    "eval-png-is-text": ("eval --model {export} --data {records} --confusion-png {user}/notes.txt", 1, ["--confusion-png", "not a PNG written by fer-tf"]),
    "eval-png-is-users-png": ("eval --model {export} --data {records} --confusion-png {user}/photo.png", 1, ["--confusion-png", "photo.png"]),
    "eval-png-is-folder": ("eval --model {export} --data {records} --confusion-png {user}", 1, ["--confusion-png", "is a folder"]),
    "eval-png-unwritable": ("eval --model {export} --data {records} --confusion-png {ro}/cm.png", 1, ["--confusion-png", "cannot write"]),
    "eval-model-missing": ("eval --model {tmp}/nope --data {records}", 1, ["--model", "nope"]),
    "eval-data-missing": ("eval --model {export} --data {tmp}/nope --confusion-png {tmp}/cm.png", 1, ["nope"]),
    # export
    "export-out-file": ("export --model-dir {run} --out {user}/notes.txt", 1, ["--out", "is a file"]),
    "export-out-user-folder": ("export --model-dir {run} --out {user}", 1, ["--out", "did not write"]),
    "export-out-cwd": ("export --model-dir {run} --out .", 1, ["--out", "current directory"]),
    "export-out-is-model-dir": ("export --model-dir {run} --out {run}", 1, ["--out", "is the input"]),
    "export-out-contains-model-dir": ("export --model-dir {run} --out {tmp}", 1, ["--out", "contains the input"]),
    "export-out-records": ("export --model-dir {run} --out {records}", 1, ["record folder"]),
    "export-out-unwritable": ("export --model-dir {run} --out {ro}/e", 1, ["--out", "cannot write"]),
    "export-tflite-out-file": ("export --model-dir {run} --tflite --out {user}/notes.txt", 1, ["--out", "not a fer-tf TFLite model"]),
    "export-check-split-unknown": ("export --model-dir {run} --tflite --out {tmp}/m.tflite --check-split dev", 2, ["--check-split"]),
    "export-model-dir-missing": ("export --model-dir {tmp}/nope --out {tmp}/e", 1, ["--model-dir", "nope"]),
    # bottleneck
    "bottleneck-batch-size-0": ("bottleneck --data {records} --out {tmp}/b --batch-size 0", 2, ["--batch-size"]),
    "bottleneck-width-2": ("bottleneck --data {records} --out {tmp}/b --width 2", 2, ["--width"]),
    "bottleneck-out-user": ("bottleneck --data {records} --out {user}", 1, ["--out", "did not write"]),
    "bottleneck-out-cwd": ("bottleneck --data {records} --out .", 1, ["--out", "current directory"]),
    # predict
    "predict-stride-0": ("predict {face} --model {export} --video-stride 0", 2, ["--video-stride"]),
    "predict-stride-negative": ("predict {face} --model {export} --video-stride -1", 2, ["--video-stride"]),
    "predict-upsample-negative": ("predict {face} --model {export} --upsample -1", 2, ["--upsample"]),
    "predict-max-frames-negative": ("predict {face} --model {export} --max-frames -1", 2, ["--max-frames"]),
    "predict-max-frames-0": ("predict {face} --model {export} --max-frames 0", 2, ["--max-frames"]),
    "predict-precision-unknown": ("predict {face} --model {export} --precision fp16", 2, ["--precision", "fp16"]),
    "predict-format-unknown": ("predict {face} --model {export} --format xml", 2, ["--format"]),
    "predict-output-user-file": ("predict {face} --model {export} --output {user}/notes.txt", 1, ["--output", "not a fer-tf predict output"]),
    "predict-output-folder": ("predict {face} --model {export} --output {user}", 1, ["--output", "is a folder"]),
    "predict-output-is-input": ("predict {face} --model {export} --output {face}", 1, ["--output", "is the input"]),
    "predict-output-unwritable": ("predict {face} --model {export} --output {ro}/p.jsonl", 1, ["--output", "cannot write"]),
    "predict-annotate-user-folder": ("predict {face} --model {export} --annotate {user}", 1, ["--annotate", "did not write"]),
    "predict-annotate-file": ("predict {face} --model {export} --annotate {user}/notes.txt", 1, ["--annotate", "is a file"]),
    "predict-annotate-cwd": ("predict {face} --model {export} --annotate .", 1, ["--annotate", "current directory"]),
    "predict-annotate-inside-input": ("predict {faces} --model {export} --annotate {faces}/out", 1, ["--annotate", "inside the input folder"]),
    "predict-annotate-contains-input": ("predict {faces} --model {export} --annotate {tmp}/in", 1, ["--annotate", "contains the input"]),
    "predict-model-truncated": ("predict {face} --model {broken}", 1, ["--model {broken}", "cannot load SavedModel", "re-export"]),
    "eval-model-truncated": ("eval --model {broken} --data {records}", 1, ["--model {broken}", "cannot load SavedModel"]),
    "predict-model-missing": ("predict {face} --model {tmp}/nope", 1, ["--model", "nope"]),
    "predict-landmarks-model-missing": ("predict {face} --model {export} --landmarks cnn --landmarks-model {tmp}/nope", 1, ["--landmarks-model", "nope"]),
    "predict-landmarks-model-is-classifier": ("predict {face} --model {export} --landmarks cnn --landmarks-model {export}", 1, ["--landmarks-model", "not a landmark model"]),
    # landmarks
    "landmarks-model-missing": ("landmarks {face} --model {tmp}/nope --annotate {tmp}/lm", 1, ["--model", "nope"]),
    "landmarks-two-models-to-draw": ("landmarks {face} --annotate {tmp}/lm --model {tmp}/a {tmp}/b", 2, ["--model", "one landmark model"]),
    "landmarks-no-images": ("landmarks --annotate {tmp}/lm", 2, ["images"]),
    "landmarks-annotate-user": ("landmarks {face} --dlib --annotate {user}", 1, ["--annotate", "did not write"]),
    "landmarks-ced-png-user-file": ("landmarks --evaluate {csv} --ced-png {user}/notes.txt", 1, ["--ced-png", "not a PNG written by fer-tf"]),
    "landmarks-model-is-classifier": ("landmarks {face} --model {export} --annotate {tmp}/lm", 1, ["--model", "not a landmark model"]),
    # own photos, --init-from, weight storage, splits
    "records-folder-is-file": ("records {face} --dataset folder --out {tmp}/r", 1, ["not a folder"]),
    "records-folder-out-inside": ("records {faces} --dataset folder --out {faces}/r", 1, ["--out", "inside the input folder"]),
    "records-classes-one": ("records {faces} --dataset folder --out {tmp}/r --classes a", 2, ["--classes", "two or more"]),
    "records-classes-repeated": ("records {faces} --dataset folder --out {tmp}/r --classes a,a", 2, ["--classes"]),
    "train-teacher-missing": ("train --data {records} --model-dir {tmp}/m --teacher {tmp}/none.npz", 1, ["--teacher", "none.npz", "no such file"]),
    "train-teacher-not-soft-labels": ("train --data {records} --model-dir {tmp}/m --teacher {user}/notes.txt", 1, ["--teacher", "notes.txt", "not a fer-tf soft-label file"]),
    "train-distill-weight-high": ("train --data {records} --model-dir {tmp}/m --hparams distill_weight=1.5", 2, ["distill_weight=1.5"]),
    "soft-labels-out-user-file": ("soft-labels {export} --data {records} --out {user}/notes.txt", 1, ["--out", "notes.txt"]),
    "soft-labels-split-unknown": ("soft-labels {export} --data {records} --split valid --out {tmp}/t.npz", 1, ["--split valid", "no split"]),
    "soft-labels-model-missing": ("soft-labels {tmp}/nope --data {records} --out {tmp}/t.npz", 1, ["nope"]),
    "train-init-from-missing": ("train --data {records} --model-dir {tmp}/m --init-from {tmp}/nope", 1, ["--init-from", "no such directory"]),
    "train-init-from-user-folder": ("train --data {records} --model-dir {tmp}/m --init-from {user}", 1, ["--init-from", "without a checkpoint"]),
    "train-init-from-other-model": ("train --model vgg --data {records} --model-dir {tmp}/m --init-from {export}", 1, ["--init-from", "a lenet7 model"]),
    "train-init-from-is-model-dir": ("train --data {records} --model-dir {run} --init-from {run}", 1, ["--model-dir"]),
    "train-split-unknown": ("train --data {records} --model-dir {tmp}/m --train-split fold3", 1, ["no split 'fold3'"]),
    "export-float16-and-int8": ("export --model-dir {export} --out {tmp}/e --float16 --int8", 2, ["--int8", "not allowed with"]),
    "export-prior-tau-without-data": ("export --model-dir {export} --out {tmp}/e --prior-tau 0.5", 2, ["--prior-tau", "--prior-data", "go together"]),
    "export-prior-tau-negative": ("export --model-dir {export} --out {tmp}/e --prior-tau -1 --prior-data {records}", 2, ["--prior-tau", "'-1'", ">= 0"]),
    "export-prior-data-missing": ("export --model-dir {export} --out {tmp}/e --prior-tau 0.5 --prior-data {tmp}/nope", 1, ["nope", "no such record folder"]),
    "export-prior-tflite": ("export --model-dir {export} --tflite --out {tmp}/m.tflite --prior-tau 0.5 --prior-data {records}", 2, ["--tflite", "--prior-tau first"]),
    "ensemble-prior-data-without-tau": ("ensemble {export} {export} --out {tmp}/e --prior-data {records}", 2, ["--prior-tau", "go together"]),
    "predict-smile-missing-label": ("predict {face} --model {export} --no-smile --format xml", 2, ["--format"]),
    "train-hparams-duplicate": ("train --data {records} --model-dir {tmp}/m --hparams keep_prob=0.6 keep_prob=0.7", 2, ["--hparams keep_prob", "given twice"]),
    "records-out-empty": ("records {csv} --out=", 2, ["--out", "empty path"]),
    "predict-output-empty": ("predict {face} --model {export} --output=", 2, ["--output", "empty path"]),
    "predict-annotate-empty": ("predict {face} --model {export} --annotate=", 2, ["--annotate", "empty path"]),
    "train-model-dir-empty": ("train --data {records} --model-dir=", 2, ["--model-dir", "empty path"]),
    "export-out-empty": ("export --model-dir {run} --out=", 2, ["--out", "empty path"]),
    # the parser
    "unknown-subcommand": ("fit --data {records}", 2, ["fit"]),
    "unknown-flag": ("train --data {records} --model-dir {tmp}/m --lr 0.1", 2, ["--lr"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, world, capsys):
    template, status, fragments = CASES[name]
    argv = [part.format(**world) for part in template.split()]
    before = tree_hashes(world["tmp"])
    try:
        code = cli.main(argv)
    except SystemExit as e:           # argparse exits; main() returns otherwise
        code = e.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == status, err
    assert "Traceback" not in err
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment.format(**world) in lines[0], lines[0]
    after = tree_hashes(world["tmp"])
    lost = {p for p in before if after.get(p) != before[p]}
    assert not lost, f"changed or deleted: {sorted(lost)}"


def test_legitimate_replacements_replace_only_fer_tf_output(world, capsys):
    """Records, exports, PNGs and predictions that fer-tf wrote are replaced; user files stay."""
    w = world
    steps = [
        ["records", w["csv"], "--out", w["records"], "--quiet"],
        ["export", "--model-dir", w["run"], "--out", w["export"]],
        ["eval", "--model", w["export"], "--data", w["records"], "--confusion-png", f"{w['tmp']}/cm.png"],
        ["eval", "--model", w["export"], "--data", w["records"], "--confusion-png", f"{w['tmp']}/cm.png"],
        ["predict", w["face"], "--model", w["export"], "--format", "jsonl", "--output", f"{w['tmp']}/p.jsonl"],
        ["predict", w["face"], "--model", w["export"], "--format", "csv", "--output", f"{w['tmp']}/p.jsonl"],
        ["predict", w["face"], "--model", w["export"], "--output", f"{w['tmp']}/p.txt"],
        ["predict", w["face"], "--model", w["export"], "--output", f"{w['tmp']}/p.txt",
         "--annotate", f"{w['tmp']}/ann"],
        ["predict", w["face"], "--model", w["export"], "--annotate", f"{w['tmp']}/ann"],
    ]
    user_before = tree_hashes(w["user"])
    for argv in steps:
        assert cli.main(argv) == 0, (argv, capsys.readouterr().err)
    assert tree_hashes(w["user"]) == user_before
    assert (open(f"{w['tmp']}/p.jsonl").readline().startswith("path,frame,face"))
    assert os.path.isfile(f"{w['tmp']}/ann/face.png")


def test_bom_csv_is_accepted(tmp_path, capsys):
    with gzip.open(SAMPLE_CSV, "rb") as f:
        data = f.read()
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + data)
    assert cli.main(["records", str(tmp_path / "bom.csv"), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    assert "train 210" in capsys.readouterr().out


def test_full_disk_is_one_line_and_leaves_nothing_half_written(tmp_path):
    """A file-size limit (what a full disk looks like to a writer, and settable without root)."""
    import resource
    import subprocess
    import sys
    (tmp_path / "keep.txt").write_text("mine\n")
    before = tree_hashes(str(tmp_path))

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    result = subprocess.run([sys.executable, "-m", "fer_tf.apps.cli", "records", SAMPLE_CSV, "--out",
                             str(tmp_path / "r"), "--quiet"], preexec_fn=limit,
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert "File too large" in lines[0] and "Traceback" not in result.stderr
    assert sorted(os.listdir(tmp_path)) == ["keep.txt"]        # no output, no partial folder
    assert tree_hashes(str(tmp_path)) == before
