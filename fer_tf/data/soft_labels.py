"""Soft labels: a teacher's class probabilities for the faces of a record split, keyed by the
faces' source rows, for knowledge distillation (`fer-tf soft-labels`, then `fer-tf train
--teacher FILE`).

A `.npz` holding `rows` (int64 [N]), `probabilities` (float32 [N, classes]) and a JSON `meta`
(format, label set, record folder, split, teacher). The records themselves stay untouched: the
input pipeline looks the probabilities up by `source/row`.
"""
import json
import os

import numpy as np

from fer_tf.core import atomic, outputs
from fer_tf.core.errors import FerTfError

FORMAT = outputs.SOFT_LABELS_FORMAT


def write(path, rows, probabilities, label_set, data_dir, split, teacher):
    rows = np.asarray(rows, np.int64)
    probabilities = np.asarray(probabilities, np.float32)
    meta = {"format": FORMAT, "label_set": label_set.to_json(), "data": data_dir,
            "split": split, "teacher": teacher, "count": int(len(rows))}
    with atomic.atomic_file(path, "wb") as f:
        np.savez(f, rows=rows, probabilities=probabilities, meta=np.array(json.dumps(meta)))
    return meta


def check(path, label_set, split, expected_count):
    """The file's meta, checked against the run without loading the probabilities: same label
    set, the training split, every face covered (one FerTfError naming the flag otherwise)."""
    flag = f"--teacher {path}"
    if not os.path.isfile(path):
        raise FerTfError(f"{flag}: no such file; make one with `fer-tf soft-labels MODEL "
                         "--data RECORDS --out FILE`")
    meta = outputs.soft_labels_meta(path)
    if meta is None:
        raise FerTfError(f"{flag}: not a fer-tf soft-label file; make one with "
                         "`fer-tf soft-labels`")
    if meta["label_set"]["name"] != label_set.name:
        raise FerTfError(f"{flag}: probabilities over label set {meta['label_set']['name']}, "
                         f"the records carry {label_set.name}; make them with a matching teacher")
    if meta["split"] != split or meta["count"] != expected_count:
        raise FerTfError(f"{flag}: made for split {meta['split']!r} ({meta['count']} faces), "
                         f"the run trains on {split!r} ({expected_count} faces); rerun "
                         f"`fer-tf soft-labels ... --split {split}`")
    return meta


def lookup_table(path):
    """A [max row + 1, classes] float32 table of the teacher's probabilities (-1 where a row has
    none) of a file that passed `check` (run.prepare checks it once, before any work)."""
    with np.load(path, allow_pickle=False) as data:
        rows, probabilities = data["rows"], data["probabilities"]
    table = np.full((int(rows.max()) + 1, probabilities.shape[1]), -1.0, np.float32)
    table[rows] = probabilities
    return table
