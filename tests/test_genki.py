"""GENKI-4K: the reader on a tiny archive made here, stratified deterministic folds, conversion
through the shared face pipeline, cross-validation, and predict with a smile model."""
import io
import json
import tarfile

import cv2
import numpy as np
import pytest

from conftest import FACE_PNG, LENET_NARROW, sample_rows
from fer_tf.apps import cli, evaluate, predict
from fer_tf.data import convert, records
from fer_tf.training import run
from fer_tf.data import genki4k
from fer_tf.core.errors import FerTfError


def scene(face48, seed):
    """A 180x192 photo-like scene with an upscaled FER2013 face, or a blank wall."""
    rng = np.random.RandomState(seed)
    canvas = np.clip(rng.normal(120, 10, (192, 180, 3)), 0, 255).astype(np.uint8)
    if face48 is not None:
        face = cv2.resize(face48, (150, 150), interpolation=cv2.INTER_CUBIC)
        canvas[20:170, 15:165] = face[:, :, None]
    return cv2.imencode(".jpg", canvas)[1].tobytes()


def make_archive(path, n=24, blanks=(4, 11)):
    rows = [r for r in sample_rows() if r[2] == "Training"]
    smiles = [int(i % 3 != 0) for i in range(n)]           # 16 smiles, 8 not
    with tarfile.open(path, "w:gz") as tar:
        def add(name, data):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        labels = "".join(f"{s} 0.1 -0.2 0.05\n" for s in smiles)
        add("genki4k/labels.txt", labels.encode())
        for i in range(n):
            face = None if i in blanks else np.array(rows[i * 7][1].split(), np.uint8).reshape(48, 48)
            add(f"genki4k/files/file{i + 1:04d}.jpg", scene(face, i))
    return smiles


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    path = tmp_path_factory.mktemp("genki") / "genki4k.tar.gz"
    smiles = make_archive(str(path))
    return str(path), smiles


def test_reader_on_archive_and_folder(archive, tmp_path):
    path, smiles = archive
    photos = list(genki4k.read_photos(path))
    assert [p.index for p in photos] == list(range(1, 25))
    assert [p.smile for p in photos] == smiles and photos[0].pose == (0.1, -0.2, 0.05)
    assert photos[0].name == "file0001.jpg" and photos[0].data[:2] == b"\xff\xd8"
    with tarfile.open(path) as tar:
        tar.extractall(tmp_path)
    from_folder = list(genki4k.read_photos(str(tmp_path)))
    assert [(p.index, p.smile, p.data) for p in from_folder] == [(p.index, p.smile, p.data) for p in photos]
    (tmp_path / "genki4k" / "labels.txt").write_text("1 0 0\n")
    with pytest.raises(FerTfError, match="labels.txt:1: expected 4 values"):
        list(genki4k.read_photos(str(tmp_path)))


def test_folds_are_stratified_and_deterministic():
    labels = np.array([1] * 2162 + [0] * 1838)
    folds = genki4k.stratified_folds(labels, 10, seed=0)
    assert (folds == genki4k.stratified_folds(labels, 10, seed=0)).all()
    assert not (folds == genki4k.stratified_folds(labels, 10, seed=1)).all()
    for k in range(10):
        assert abs((labels[folds == k] == 1).sum() - 216.2) <= 1
        assert abs((labels[folds == k] == 0).sum() - 183.8) <= 1


@pytest.fixture(scope="module")
def genki_records(archive, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("rg") / "genki")
    manifest = convert.convert_genki(archive[0], out, folds=3, progress=False, log=lambda *_: None)
    return out, manifest


def test_conversion_counts_faces_and_failures(genki_records, archive, tmp_path):
    out, manifest = genki_records
    assert manifest.photos == 24
    assert set(manifest.extra["faces"]["detection_failed"]) >= {"file0005.jpg", "file0012.jpg"}
    assert manifest.extra["faces"]["detected"] == 24 - len(manifest.extra["faces"]["detection_failed"]) >= 18
    assert sum(s.count for s in manifest.splits.values()) == manifest.extra["faces"]["detected"]
    assert manifest.split_aliases == {"train": "fold0", "eval": "fold1", "test": "fold2"}
    assert manifest.labels.name == "smile2" and manifest.side == 64
    fallback = convert.convert_genki(archive[0], str(tmp_path / "fb"), folds=3, progress=False,
                                     centre_crop_fallback=True, log=lambda *_: None)
    assert sum(s.count for s in fallback.splits.values()) == 24
    assert fallback.extra["faces"]["centre_cropped"] == manifest.extra["faces"]["detection_failed"]


def test_cross_validation_and_smile_predict(genki_records, tmp_path, capsys):
    out, _ = genki_records
    cv_dir = tmp_path / "cv"
    assert cli.main(["cv", "--model", "smile", "--data", out, "--model-dir", str(cv_dir),
                     "--epochs", "2", "--hparams", "batch_size=8"]) == 0
    assert "3-fold cross-validation" in capsys.readouterr().out
    summary = json.loads((cv_dir / "cv.json").read_text())
    accuracies = summary["accuracies"]
    assert len(accuracies) == 3 and abs(summary["mean"] - np.mean(accuracies)) < 1e-9
    # Each fold's figure is its own export scored on the held-out fold (one evaluation, at the end).
    for k, accuracy in enumerate(accuracies):
        report = evaluate.evaluate(str(cv_dir / f"fold{k}"), out, f"fold{k}",
                                   png=str(tmp_path / f"cm{k}.png"))
        assert report["accuracy"] == pytest.approx(accuracy, abs=1e-6)
    # A rerun resumes: the finished folds are evaluated again, not retrained nor lost.
    assert cli.main(["cv", "--model", "smile", "--data", out, "--model-dir", str(cv_dir),
                     "--epochs", "2", "--hparams", "batch_size=8"]) == 0
    again = json.loads((cv_dir / "cv.json").read_text())["accuracies"]
    assert again == pytest.approx(accuracies, abs=1e-6)
    # lenet7 trains on the same records unchanged (64 px faces resized to its 48 px input).
    metrics, _ = run.train("lenet7", out, str(tmp_path / "lenet7"), max_steps=2,
                           overrides={"batch_size": 8, **LENET_NARROW}, log=lambda *_: None)
    assert "recall/smile" in metrics and "recall/no_smile" in metrics
    export = str(cv_dir / "fold0")
    result = tmp_path / "p.jsonl"
    predict.run([FACE_PNG], export, "jsonl", str(result))
    row = json.loads(result.read_text())
    assert set(row["probabilities"]) == {"no smile", "smile"}
    with pytest.raises(FerTfError, match="converted with 3 folds"):
        run.cross_validate("smile", out, str(tmp_path / "cv2"), folds=10)
    assert records.read_manifest(out).split_count("train") > 0


def test_smile_scores_tool_scores_each_fold_with_its_own_model(genki_records, lenet_export,
                                                                sample_records, tmp_path):
    """tools/smile_scores.py: an expression model's P(happy) on every fold, a cross-validation
    dir's fold model k on fold k only, their mean, thresholded at 0.5 — each line recomputed by
    hand; photos without a face count as errors; records that are not smiles are refused."""
    import itertools
    import os
    import subprocess
    import sys
    from fer_tf.serving import export, exported
    out, manifest = genki_records
    other = export.export(lenet_export, str(tmp_path / "flip"), tta="flip")
    cv_dir = tmp_path / "cv"
    cv_dir.mkdir()
    fold_models = [other, lenet_export, other]
    for k, path in enumerate(fold_models):
        os.symlink(path, cv_dir / f"fold{k}")
    tool = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools",
                        "smile_scores.py")
    lines = subprocess.run([sys.executable, tool, lenet_export, "--cv", str(cv_dir), "--data", out],
                           capture_output=True, text=True, check=True).stdout.splitlines()

    def happy(path, fold):
        encoded, labels = zip(*records.iter_split(out, fold, 256))
        return exported.ExportedModel(path).predict(np.concatenate(encoded))[:, 3], \
            np.concatenate(labels)

    plain = [happy(lenet_export, f"fold{k}") for k in range(3)]
    by_fold = [happy(fold_models[k], f"fold{k}") for k in range(3)]
    labels = np.concatenate([l for _, l in plain])
    members = [np.concatenate([s for s, _ in plain]), np.concatenate([s for s, _ in by_fold])]
    assert np.abs(members[0] - members[1]).max() > 1e-3       # the fold models differ
    photos = manifest.extra["faces"]["photos"]
    for line, scores in zip(lines, members + [(members[0] + members[1]) / 2]):
        pairs = [(p, n) for p, n in itertools.product(scores[labels == 1], scores[labels == 0])]
        auc = np.mean([1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs])
        correct = int(np.sum((scores > 0.5) == (labels == 1)))
        assert f"{correct} of {len(labels)} faces right, {correct / photos:.4f} of all " \
               f"{photos} photos (AUC {auc:.4f})" in line
    assert lines[-1] == f"accuracy over all {photos} photos: {correct / photos:.4f}"
    refused = subprocess.run([sys.executable, tool, lenet_export, "--data", sample_records],
                             capture_output=True, text=True)
    assert refused.returncode != 0 and refused.stderr.strip().splitlines() == [
        f"smile_scores: --data {sample_records}: not smile records with folds; convert GENKI-4K "
        "with `fer-tf records --dataset genki`"]
