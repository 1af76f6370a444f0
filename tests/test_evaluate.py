"""`fer-tf eval`'s arithmetic and report, from numbers written here, and one evaluation of a
shipped export on the sample records checked against its own predictions."""
import json
import os

import numpy as np
import pytest

from fer_tf.apps import evaluate
from fer_tf.core.errors import FerTfError
from fer_tf.data import records
from fer_tf.serving import exported

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT = os.path.join(ROOT, "models", "default")


def test_confusion_rows_are_true_classes_columns_predicted():
    matrix = evaluate.confusion_matrix(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 2]), 4)
    assert matrix.tolist() == [[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]]


def test_summary_skips_absent_classes_in_the_mean():
    matrix = np.array([[3, 1, 0], [0, 0, 0], [1, 1, 2]])
    report = evaluate.summarize(matrix, ["a", "b", "c"])
    assert report["count"] == 8 and report["accuracy"] == 5 / 8
    assert report["recall"] == {"a": 0.75, "b": 0.0, "c": 0.5}
    assert report["mean_per_class_accuracy"] == 0.625                 # (0.75 + 0.5) / 2
    assert report["support"] == {"a": 4, "b": 0, "c": 4}
    assert report["confusion"] == matrix.tolist() and report["classes"] == ["a", "b", "c"]
    empty = evaluate.summarize(np.zeros((2, 2), int), ["a", "b"])
    assert empty["accuracy"] == 0.0 and empty["mean_per_class_accuracy"] == 0.0


def test_a_single_face_is_all_or_nothing():
    assert evaluate.summarize(np.array([[1, 0], [0, 0]]), ["a", "b"])["accuracy"] == 1.0
    assert evaluate.summarize(np.array([[0, 1], [0, 0]]), ["a", "b"])["accuracy"] == 0.0
    # A class with one face counts toward the mean like any other.
    one = evaluate.summarize(np.array([[1, 0], [2, 2]]), ["a", "b"])
    assert one["mean_per_class_accuracy"] == 0.75
    alone = evaluate.summarize(np.array([[1, 0], [0, 0]]), ["a", "b"])
    assert alone["mean_per_class_accuracy"] == 1.0


# Matplotlib's "Blues" at 0 and at 1, the colours of a cell with recall 0 and 1.
BLUES_0, BLUES_1 = (247, 251, 255), (8, 48, 107)


def shaded(png, colour, tolerance=5):
    import cv2
    rgb = cv2.imread(png)[:, :, ::-1].astype(int)
    return rgb, np.abs(rgb - colour).sum(axis=-1) <= tolerance


def test_the_confusion_png_shades_each_row_by_its_recall(tmp_path):
    """A cell is as dark as its share of its row (white text on the dark ones); a class with no
    faces is a row of recall 0, not of NaN."""
    evaluate.plot_confusion(np.array([[1, 0], [0, 1]]), ["a", "b"], str(tmp_path / "id.png"), "t")
    rgb, dark = shaded(str(tmp_path / "id.png"), BLUES_1)
    light = shaded(str(tmp_path / "id.png"), BLUES_0)[1]
    assert dark.sum() > 0.1 * dark.size and abs(int(dark.sum()) - int(light.sum())) < 0.01 * dark.size
    ys, xs = np.nonzero(dark)                        # the diagonal's two cells: the heatmap
    top, bottom, left, right = ys.min(), ys.max(), xs.min(), xs.max()
    middle_y, middle_x = (top + bottom) // 2, (left + right) // 2
    on_dark = rgb[top:middle_y, left:middle_x]      # cell (a, a): recall 1
    on_light = rgb[top:middle_y, middle_x:right]    # cell (a, b): 0
    assert (on_dark > 230).all(axis=-1).sum() > 10 and not (on_dark < 60).all(axis=-1).any()
    assert (on_light < 60).all(axis=-1).sum() > 10
    evaluate.plot_confusion(np.array([[3, 1], [0, 0]]), ["a", "b"], str(tmp_path / "absent.png"),
                            "t")
    assert shaded(str(tmp_path / "absent.png"), BLUES_0)[1].sum() > 0.9 * light.sum()
    assert not shaded(str(tmp_path / "absent.png"), BLUES_1)[1].any()   # rows: 0.75 and 0.25
    # A cell at exactly one half keeps black text (the same layout: the same cells).
    evaluate.plot_confusion(np.array([[1, 0], [1, 1]]), ["a", "b"], str(tmp_path / "half.png"),
                            "t")
    half = shaded(str(tmp_path / "half.png"), BLUES_0)[0][middle_y:bottom, left:middle_x]
    assert (half < 60).all(axis=-1).sum() > 10 and not (half > 230).all(axis=-1).any()


def test_accuracy_scores_count_only_present_classes():
    probabilities = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.6, 0.4, 0.0], [0.1, 0.0, 0.9]])
    labels = np.array([0, 1, 1, 0])
    assert evaluate.accuracy_scores(probabilities, labels) == (0.5, 0.5)
    assert evaluate.accuracy_scores(probabilities[:2], labels[:2]) == (1.0, 1.0)


def brute_force_auc(scores, labels):
    positives = [s for s, y in zip(scores, labels) if y]
    negatives = [s for s, y in zip(scores, labels) if not y]
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


@pytest.mark.parametrize("scores, labels", [
    ([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]),
    ([0.5, 0.5, 0.5, 0.2, 0.9], [1, 0, 1, 0, 1]),                  # ties count half
    ([0.9, 0.8, 0.1], [0, 0, 1]),
    ([0.3, 0.3, 0.3, 0.3], [1, 0, 0, 1]),
])
def test_roc_auc_is_the_pairwise_win_rate(scores, labels):
    assert evaluate.roc_auc(scores, labels) == pytest.approx(brute_force_auc(scores, labels), abs=1e-12)
    rng = np.random.RandomState(0)
    many = rng.randint(0, 5, 300) / 4.0            # over 256: no small-int identity to lean on
    truth = rng.rand(300) < 0.4
    assert evaluate.roc_auc(many, truth) == pytest.approx(brute_force_auc(many, truth), abs=1e-12)


def test_the_printed_report():
    report = {**evaluate.summarize(np.array([[2, 1], [0, 3]]), ["happy", "surprise"]),
              "split": "test", "data": "records/x", "tta": "flip", "confusion_png": "c.png"}
    assert evaluate.format_report(report) == "\n".join([
        "test split of records/x: 6 faces, each averaged with its mirror image",
        "accuracy                0.8333",
        "mean per-class accuracy 0.8333",
        "per-class recall:",
        "  happy        0.6667  (n=3)",
        "  surprise     1.0000  (n=3)",
        "confusion matrix (rows true, columns predicted):",
        "          happy surpr",
        "  happy        2     1",
        "  surprise     0     3",
        "confusion matrix PNG: c.png"])
    assert evaluate.tta_note({"tta": "flip"}) == " (+flip)"
    assert evaluate.tta_note({"tta": "ten_crop"}) == " (ten-crop)"
    assert evaluate.tta_note({"tta": "per_member"}) == " (members' own views)"
    assert evaluate.tta_note({"tta": "none"}) == evaluate.tta_note({}) == ""
    assert "each member with its own" in evaluate.format_report({**report, "tta": "per_member"})
    assert "over ten crops" in evaluate.format_report({**report, "tta": "ten_crop"})
    assert evaluate.format_report({**report, "tta": "none"}).splitlines()[0] == \
        "test split of records/x: 6 faces"
    # The header is indented past the longest class name (here 3 letters).
    short = {**evaluate.summarize(np.array([[1, 0], [0, 1]]), ["joy", "sad"]),
             "split": "test", "data": "r", "tta": "none", "confusion_png": "c.png"}
    assert evaluate.format_report(short).splitlines()[-4:-1] == [
        "       joy   sad", "  joy     1     0", "  sad     0     1"]


def test_evaluate_measures_the_export_on_the_split(sample_records, tmp_path):
    png = str(tmp_path / "confusion.png")
    report = evaluate.evaluate(DEFAULT, sample_records, "test", png=png)
    model = exported.ExportedModel(DEFAULT)
    probabilities, labels = [], []
    for encoded, batch_labels in records.iter_split(sample_records, "test", 7):
        probabilities.append(model.predict(encoded))
        labels.append(batch_labels)
    predicted = np.concatenate(probabilities).argmax(axis=1)
    labels = np.concatenate(labels)
    assert report["count"] == len(labels) == records.read_manifest(sample_records).split_count("test")
    assert report["accuracy"] == pytest.approx(np.mean(predicted == labels), abs=1e-12)
    assert report["confusion"] == evaluate.confusion_matrix(labels, predicted, 7).tolist()
    assert report["model"] == model.path and report["split"] == "test" and report["tta"] == "flip"
    assert report["confusion_png"] == png
    from PIL import Image
    with Image.open(png) as image:           # 7 classes: (1.1 * 7 + 2) x (7 + 1.5) inches at 110 dpi
        assert image.format == "PNG" and image.size == (1067, 935)
        assert image.info.get("Software") == "fer-tf"                # the output rule's marker
    json.dumps(report)                                               # what --json writes


def test_a_label_set_of_ones_own_is_matched_by_its_classes(tmp_path):
    """Two reads of one custom label set are equal, not the same object: accepted."""
    from fer_tf.core import labels
    from test_rebuild_graph import random_weights, vgg_meta, write_export
    own = labels.custom(["calm", "tense"])
    meta = vgg_meta(label_set=own)
    path = write_export(meta, random_weights(meta, 0), tmp_path / "export")
    folder = tmp_path / "records"
    folder.mkdir()
    records.write_manifest(str(folder), records.Manifest(
        dataset="folder", label_set=labels.custom(["calm", "tense"]).to_json(), source={},
        options={}, image=records.Manifest.image_info(48, 1),
        splits={"test": records.Split(count=2, per_class=[1, 1], shards=[])}))
    model, manifest = evaluate.model_for_split(path, str(folder), "test")
    assert model.label_set == manifest.labels and model.label_set is not manifest.labels


def test_evaluate_refuses_another_label_set_and_an_unknown_split(ferplus_records, sample_records):
    with pytest.raises(FerTfError) as raised:
        evaluate.model_for_split(DEFAULT, ferplus_records, "test")
    assert str(raised.value) == (f"--data {ferplus_records}: records carry label set ferplus8, "
                                 f"but the model at {DEFAULT} was trained on fer7; use it on "
                                 "matching records")
    with pytest.raises(FerTfError) as raised:
        evaluate.model_for_split(DEFAULT, sample_records, "validation")
    assert str(raised.value).startswith("--split validation: no split 'validation' (the folder has ")
    assert str(raised.value).endswith(f" in {sample_records}")
