"""Evaluate an exported SavedModel on a record split: the exact artefact that ships is measured.

Faces go through the serving signature as PNG bytes, so evaluation exercises the same decode and
normalisation a user's photo will.
"""
import os
import tempfile

import numpy as np

from fer_tf.core import atomic, outputs
from fer_tf.serving import export, exported
from fer_tf.data import records
from fer_tf.core.errors import FerTfError


def confusion_matrix(labels, predictions, num_classes):
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def summarize(matrix, class_names):
    totals = matrix.sum(axis=1)
    recall = np.divide(np.diag(matrix), totals, out=np.zeros(len(totals)), where=totals > 0)
    return {
        "count": int(matrix.sum()),
        "accuracy": float(np.trace(matrix) / max(matrix.sum(), 1)),
        "mean_per_class_accuracy": float(recall[totals > 0].mean()) if (totals > 0).any() else 0.0,
        "recall": {name: float(r) for name, r in zip(class_names, recall)},
        "support": {name: int(t) for name, t in zip(class_names, totals)},
        "confusion": matrix.tolist(),
        "classes": list(class_names),
    }


def plot_confusion(matrix, class_names, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    totals = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
    fig, ax = plt.subplots(figsize=(1.1 * len(class_names) + 2, 1.0 * len(class_names) + 1.5))
    ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(class_names)):
        for j in range(len(class_names)):
            ax.text(j, i, f"{normalised[i, j]:.2f}\n({matrix[i, j]})", ha="center", va="center",
                    fontsize=8, color="white" if normalised[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (row-normalised recall)")
    ax.set_title(title)
    fig.tight_layout()
    with atomic.atomic_file(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110, metadata={"Software": outputs.PNG_SOFTWARE})
    plt.close(fig)


def model_for_split(model_path, data_dir, split, precision="float32"):
    """(loaded export, manifest), checked: the split exists and the label sets match."""
    model = exported.ExportedModel(model_path, precision=precision)
    manifest = records.read_manifest(data_dir)
    try:
        manifest.resolve_split(split)
    except FerTfError as e:
        raise FerTfError(f"--split {split}: {e} in {data_dir}") from None
    data_labels = manifest.labels
    if data_labels != model.label_set:
        raise FerTfError(f"--data {data_dir}: records carry label set {data_labels.name}, but the "
                         f"model at {model.path} was trained on {model.label_set.name}; use it "
                         "on matching records")
    return model, manifest


def split_probabilities(model_path, data_dir, split, batch_size=256, precision="float32"):
    """(loaded export, probabilities (N, classes), labels (N,)) of an export on a record split,
    checked like `evaluate`."""
    model, _ = model_for_split(model_path, data_dir, split, precision)
    probabilities, labels = [], []
    for encoded, batch_labels in records.iter_split(data_dir, split, batch_size):
        probabilities.append(model.predict(encoded))
        labels.append(batch_labels)
    return model, np.concatenate(probabilities), np.concatenate(labels)


def accuracy_scores(probabilities, labels):
    """(accuracy, mean per-class accuracy) of the top class; classes absent from `labels` do
    not count toward the mean."""
    predicted = probabilities.argmax(axis=1)
    recalls = [np.mean(predicted[labels == c] == c) for c in np.unique(labels)]
    return float(np.mean(predicted == labels)), float(np.mean(recalls))


def roc_auc(scores, labels):
    """Area under the ROC curve (Mann-Whitney), ties counted half."""
    scores, labels = np.asarray(scores), np.asarray(labels, bool)
    order = np.argsort(scores)
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    positives = labels.sum()
    negatives = len(labels) - positives
    return (ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives)


def evaluate(model_path, data_dir, split="test", png=None, batch_size=256, tta=None,
             precision="float32"):
    """Accuracy, recall and confusion of an export on a record split; with `tta` (flip or
    ten_crop) the export is first rebuilt with those test-time views in its graph; precision
    bf16: with the bfloat16 arithmetic `predict` uses where the CPU has it."""
    if tta:
        with tempfile.TemporaryDirectory(prefix="fer_tf_tta_") as work:
            rebuilt = export.export(model_path, os.path.join(work, "export"), tta=tta)
            report = evaluate(rebuilt, data_dir, split, png, batch_size, precision=precision)
        report.update(model=model_path, tta=tta)
        return report
    model, probabilities, labels = split_probabilities(model_path, data_dir, split, batch_size,
                                                       precision)
    predictions = probabilities.argmax(axis=1)
    report = summarize(confusion_matrix(labels, predictions, model.label_set.num_classes),
                       model.label_set.classes)
    report.update(model=model.path, data=data_dir, split=split, tta=model.tta)
    png = png or f"confusion_{model.meta.model}_{split}.png"
    plot_confusion(np.array(report["confusion"]), model.label_set.classes, png,
                   f"{model.meta.model} on {os.path.basename(os.path.normpath(data_dir))} "
                   f"{split}{tta_note(report)}: accuracy {report['accuracy']:.4f}")
    report["confusion_png"] = png
    return report


def tta_note(report):
    return {"flip": " (+flip)", "ten_crop": " (ten-crop)",
            "per_member": " (members' own views)"}.get(report.get("tta"), "")


def format_report(report):
    tta = {"flip": ", each averaged with its mirror image",
           "ten_crop": ", each averaged over ten crops (corners, centre, mirrored)",
           "per_member": ", each member with its own test-time views (flip, ten crops or none)"}.get(
        report.get("tta"), "")
    lines = [f"{report['split']} split of {report['data']}: {report['count']} faces{tta}",
             f"accuracy                {report['accuracy']:.4f}",
             f"mean per-class accuracy {report['mean_per_class_accuracy']:.4f}",
             "per-class recall:"]
    for name in report["classes"]:
        lines.append(f"  {name:12s} {report['recall'][name]:.4f}  (n={report['support'][name]})")
    width = max(len(c) for c in report["classes"])
    lines.append("confusion matrix (rows true, columns predicted):")
    lines.append(" " * (width + 2) + " ".join(f"{c[:5]:>5s}" for c in report["classes"]))
    for name, row in zip(report["classes"], report["confusion"]):
        lines.append(f"  {name:{width}s} " + " ".join(f"{v:5d}" for v in row))
    lines.append(f"confusion matrix PNG: {report['confusion_png']}")
    return "\n".join(lines)
