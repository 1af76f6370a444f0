"""Knowledge distillation, step one: a teacher export (typically an ensemble) labels every face
of a record split with its class probabilities (`fer-tf soft-labels`); `fer-tf train --teacher`
then trains a single network against them beside the hard labels.
"""
import numpy as np

from fer_tf.apps import evaluate
from fer_tf.data import records, soft_labels


def label_split(model_path, data_dir, split, out, batch_size=128, progress_bar=None):
    """Write the teacher's probabilities for `split` of `data_dir` to `out`; returns the meta
    with the teacher's accuracy on that split. `progress_bar(total)`: a tqdm-like bar, opened
    once the inputs are checked."""
    model, manifest = evaluate.model_for_split(model_path, data_dir, split)
    label_set = model.label_set
    rows, labels, probabilities = [], [], []
    bar = progress_bar(manifest.split_count(split)) if progress_bar else None
    for encoded, batch_labels, batch_rows in records.iter_split(data_dir, split, batch_size,
                                                                 rows=True):
        probabilities.append(model.predict(encoded))
        labels.append(batch_labels)
        rows.append(batch_rows)
        if bar is not None:
            bar.update(len(batch_rows))
    if bar is not None:
        bar.close()
    rows, labels = np.concatenate(rows), np.concatenate(labels)
    probabilities = np.concatenate(probabilities)
    meta = soft_labels.write(out, rows, probabilities, label_set, data_dir, split, model.path)
    meta["teacher_accuracy"] = float((probabilities.argmax(axis=1) == labels).mean())
    return meta
