"""The output rule in process (fer_tf/core/outputs.py): each kind of output is recognised by
fer-tf's own markers and their content — never by common file names — and `check` refuses every
path it must refuse, with the words a user reads. The marker strings are written here, not read
from the module under test, so a changed marker fails these tests."""
import json
import os
import struct

import numpy as np
import pytest

from fer_tf.core import outputs
from fer_tf.core.errors import FerTfError


def write(path, text=""):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


def records(folder, fmt="fer-tf-records/1"):
    write(os.path.join(folder, "manifest.json"), json.dumps({"format": fmt, "splits": {}}))
    return folder


def export(folder, meta=None):
    write(os.path.join(folder, "saved_model.pb"), "pb")
    write(os.path.join(folder, "assets.extra", "fer_tf.json"),
          json.dumps(meta if meta is not None else {"model": "vgg"}))
    return folder


RUN = {"model": "vgg", "label_set": {"name": "fer7"}, "image_size": [48, 48, 1]}


def model_dir(folder, meta=RUN):
    write(os.path.join(folder, "fer_tf_run.json"), json.dumps(meta))
    return folder


def png(path, software="fer-tf"):
    from PIL import Image, PngImagePlugin
    info = PngImagePlugin.PngInfo()
    if software:
        info.add_text("Software", software)
    Image.new("RGB", (4, 4)).save(path, pnginfo=info)
    return path


def tflite(path, sidecar=True, magic=b"TFL3"):
    with open(path, "wb") as f:
        f.write(struct.pack("<I", 28) + magic + b"\0" * 32)
    if sidecar is not None:
        write(os.path.splitext(path)[0] + ".json",
              json.dumps({"label_set": {"name": "fer7"}} if sidecar else {"other": 1}))
    return path


def soft_labels(path, fmt="fer-tf-soft-labels/1"):
    np.savez(path, meta=np.array(json.dumps({"format": fmt})), probabilities=np.zeros((2, 7)))
    return path


def refused(path, kind, *fragments, flag="--out", **kwargs):
    with pytest.raises(FerTfError) as caught:
        outputs.check(str(path), kind, flag, **kwargs)
    message = str(caught.value)
    assert message.startswith(f"{flag} ") or message.startswith(f"{flag}:"), message
    for fragment in fragments:
        assert fragment in message, message
    return message


# ---- recognising fer-tf's own outputs -------------------------------------------------------
def test_records_by_their_manifest_format(tmp_path):
    assert outputs.KINDS["records"][1](records(str(tmp_path / "a")))
    assert not outputs.KINDS["records"][1](records(str(tmp_path / "b"), "fer-tf-records/2"))
    write(str(tmp_path / "c" / "manifest.json"), "[1, 2]")
    assert not outputs.KINDS["records"][1](str(tmp_path / "c"))
    write(str(tmp_path / "d" / "manifest.json"), "{broken")
    assert not outputs.KINDS["records"][1](str(tmp_path / "d"))


def test_exports_need_the_graph_and_fer_tf_metadata(tmp_path):
    is_export = outputs.KINDS["export"][1]
    assert is_export(export(str(tmp_path / "a")))
    assert not is_export(export(str(tmp_path / "b"), meta=[1]))
    write(str(tmp_path / "c" / "saved_model.pb"))
    assert not is_export(str(tmp_path / "c"))                    # a SavedModel fer-tf did not write
    write(str(tmp_path / "d" / "assets.extra" / "fer_tf.json"), "{}")
    assert not is_export(str(tmp_path / "d"))


def test_model_dirs_by_markers_and_content_not_common_names(tmp_path):
    is_model_dir = outputs.KINDS["model_dir"][1]
    assert is_model_dir(model_dir(str(tmp_path / "run")))
    for missing in RUN:                       # each of the three keys is needed
        meta = {k: v for k, v in RUN.items() if k != missing}
        assert not is_model_dir(model_dir(str(tmp_path / f"no_{missing}"), meta))
    # The data-loss bug: a user's labels.txt and steps/ are not a model dir ...
    user = tmp_path / "user"
    write(str(user / "labels.txt"), "cat\ndog\n")
    os.makedirs(user / "steps")
    assert not is_model_dir(str(user))
    # ... but the same names beside fer-tf's own metadata (a cluster worker's early files) are.
    write(str(user / "fer_tf.json"), json.dumps({**RUN, "hparams": {}}))
    assert is_model_dir(str(user))
    write(str(user / "notes.txt"), "mine")
    assert not is_model_dir(str(user))                           # anything else: not ours
    os.remove(user / "notes.txt")
    write(str(user / "fer_tf.json"), json.dumps(RUN))            # without hparams: not ours
    assert not is_model_dir(str(user))
    # A run that died taking its lock leaves only the lock with its pid (or nothing in it).
    lock = tmp_path / "lock"
    write(str(lock / ".fer_tf.lock"), "12345\n")
    assert is_model_dir(str(lock))
    write(str(lock / ".fer_tf.lock"), "")
    assert is_model_dir(str(lock))
    write(str(lock / ".fer_tf.lock"), "not a pid")
    assert not is_model_dir(str(lock))
    with open(lock / ".fer_tf.lock", "wb") as f:
        f.write(b"\xff\xfe\x00")
    assert not is_model_dir(str(lock))
    write(str(tmp_path / "temp" / ".eval_history.json.tmp123"), "")   # fer-tf's temporary names
    write(str(tmp_path / "temp" / "fer_tf.json"), json.dumps({**RUN, "hparams": {}}))
    assert is_model_dir(str(tmp_path / "temp"))


def test_cv_folders_hold_only_folds_and_cv_json(tmp_path):
    is_cv = outputs.KINDS["cv_dir"][1]
    cv = tmp_path / "cv"
    model_dir(str(cv / "fold0"))
    write(str(cv / "cv.json"), "{}")
    assert is_cv(str(cv))
    os.makedirs(cv / "fold1")
    assert not is_cv(str(cv))                                    # an empty fold is not a run
    os.rmdir(cv / "fold1")
    model_dir(str(cv / "other"))
    assert not is_cv(str(cv))
    os.makedirs(tmp_path / "empty")
    assert not is_cv(str(tmp_path / "empty"))


def test_annotation_folders_by_their_marker(tmp_path):
    folder = str(tmp_path / "a")
    outputs.mark_annotations(folder)
    outputs.mark_annotations(folder)                             # idempotent
    assert os.listdir(folder) == [".fer_tf_annotations"]
    assert "fer-tf" in open(os.path.join(folder, ".fer_tf_annotations")).read()
    assert outputs.KINDS["annotations"][1](folder)
    os.makedirs(tmp_path / "b")
    write(str(tmp_path / "b" / "annotations"), "")
    assert not outputs.KINDS["annotations"][1](str(tmp_path / "b"))


def test_pngs_by_their_software_tag(tmp_path):
    is_png = outputs.KINDS["png"][1]
    assert is_png(png(str(tmp_path / "a.png")))
    assert not is_png(png(str(tmp_path / "b.png"), software="GIMP"))
    assert not is_png(png(str(tmp_path / "c.png"), software=None))
    from PIL import Image
    Image.new("RGB", (4, 4)).save(tmp_path / "d.jpg")
    assert not is_png(str(tmp_path / "d.jpg"))
    assert not is_png(write(str(tmp_path / "e.png"), "text"))


def test_predictions_by_their_first_line(tmp_path):
    is_predictions = outputs.KINDS["predictions"][1]
    ours = ["# fer-tf predict: path [frame] face\n",
            "path,frame,face,left,top,right,bottom,label,angry\n",
            json.dumps({"path": "a.jpg", "frame": None, "face": 0}) + "\n"]
    for i, first in enumerate(ours):
        assert is_predictions(write(str(tmp_path / f"ours{i}"), first + "more\n"))
    theirs = ["# my notes\n", "path,frame,label\n", json.dumps({"path": "a", "frame": 1}) + "\n",
              "[1, 2]\n", "{not json\n", ""]
    for i, first in enumerate(theirs):
        assert not is_predictions(write(str(tmp_path / f"theirs{i}"), first))
    with open(tmp_path / "binary", "wb") as f:
        f.write(b"\xff\xfe\xfd")
    assert not is_predictions(str(tmp_path / "binary"))


def test_tflite_needs_the_magic_and_its_sidecar(tmp_path):
    is_tflite = outputs.KINDS["tflite"][1]
    assert is_tflite(tflite(str(tmp_path / "a.tflite")))
    assert not is_tflite(tflite(str(tmp_path / "b.tflite"), sidecar=False))
    assert not is_tflite(tflite(str(tmp_path / "c.tflite"), sidecar=None))
    assert not is_tflite(tflite(str(tmp_path / "d.tflite"), magic=b"TFL2"))


def test_soft_labels_by_their_meta_format(tmp_path):
    assert outputs.KINDS["soft_labels"][1](soft_labels(str(tmp_path / "a.npz")))
    assert outputs.soft_labels_meta(str(tmp_path / "a.npz")) == {"format": "fer-tf-soft-labels/1"}
    assert not outputs.KINDS["soft_labels"][1](soft_labels(str(tmp_path / "b.npz"), "other/1"))
    np.savez(tmp_path / "c.npz", probabilities=np.zeros(3))
    assert outputs.soft_labels_meta(str(tmp_path / "c.npz")) is None
    assert outputs.soft_labels_meta(write(str(tmp_path / "d.npz"), "text")) is None


def test_describe_names_what_is_there(tmp_path):
    assert outputs.describe(records(str(tmp_path / "r"))) == "a fer-tf record folder"
    assert outputs.describe(export(str(tmp_path / "e"))) == "a fer-tf SavedModel export"
    assert outputs.describe(model_dir(str(tmp_path / "m"))) == "a fer-tf training model dir"
    assert outputs.describe(png(str(tmp_path / "p.png"))) == "a PNG written by fer-tf"
    assert outputs.describe(write(str(tmp_path / "x.txt"), "mine")) is None


# ---- check: what is refused, and what is replaced ---------------------------------------------
def test_fer_tf_replaces_its_own_output_of_the_same_kind(tmp_path):
    outputs.check(records(str(tmp_path / "r")), "records", "--out")
    outputs.check(export(str(tmp_path / "e")), "export", "--out")
    outputs.check(model_dir(str(tmp_path / "m")), "model_dir", "--model-dir")
    outputs.check(png(str(tmp_path / "p.png")), "png", "--confusion-png")
    outputs.check(write(str(tmp_path / "rows.jsonl"), '{"path": "a", "frame": null, "face": 0}\n'),
                  "predictions", "--output")
    outputs.check(write(str(tmp_path / "empty.jsonl")), "predictions", "--output")     # empty file
    os.makedirs(tmp_path / "empty_folder")
    outputs.check(str(tmp_path / "empty_folder"), "records", "--out")
    outputs.check(str(tmp_path / "new" / "deeper" / "folder"), "records", "--out")


def test_user_files_and_other_kinds_are_refused(tmp_path):
    user = tmp_path / "user"
    write(str(user / "labels.txt"), "cat\n")
    os.makedirs(user / "steps")
    refused(user, "model_dir", "holds files fer-tf did not write", "fer-tf replaces only a "
            "fer-tf training model dir", "remove it yourself", flag="--model-dir")
    assert os.listdir(user / "steps") == [] and open(user / "labels.txt").read() == "cat\n"
    refused(records(str(tmp_path / "r")), "export", "it is a fer-tf record folder",
            "fer-tf replaces only a fer-tf SavedModel export")
    refused(write(str(tmp_path / "mine.csv"), "a,b\n1,2\n"), "predictions",
            "exists and is not a fer-tf predict output", "give a new file name", flag="--output")
    refused(write(str(tmp_path / "plot.png"), "x"), "png", "is not a PNG written by fer-tf",
            flag="--confusion-png")


def test_files_and_folders_are_not_swapped(tmp_path):
    refused(write(str(tmp_path / "a_file")), "records", "is a file, not a folder",
            "will not replace the file")
    os.makedirs(tmp_path / "a_folder")
    refused(tmp_path / "a_folder", "predictions", "is a folder; give a file path",
            flag="--output")
    refused(tmp_path / "a_file" / "below", "records", "is a file, not a folder; choose another path")


def test_special_places_and_empty_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    refused(".", "records", "is the current directory", "writes only to a new folder of its own")
    refused(".", "predictions", "writes only to a new file of its own", flag="--output")
    refused(str(tmp_path), "records", "is the current directory")
    refused(os.path.expanduser("~"), "records", "is your home directory")
    refused("/", "records", "is the file-system root")
    refused("", "records", "empty path; give a folder name")
    refused("", "predictions", "empty path; give a file name", flag="--output")


def test_inputs_are_never_outputs(tmp_path):
    data = records(str(tmp_path / "data"))
    refused(data, "records", "is the input", "write the output somewhere else", inputs=[data])
    refused(tmp_path, "records", "contains the input", inputs=[data, None, ""])
    photos = tmp_path / "photos"
    os.makedirs(photos)
    refused(photos / "annotated", "annotations", "lies inside the input folder",
            walked_inputs=[str(photos)], flag="--annotate")
    # Beside an input, or inside a folder that is read but not walked: fine.
    outputs.check(str(tmp_path / "data_out"), "records", "--out", inputs=[data])
    outputs.check(str(photos / "out.jsonl"), "predictions", "--output", inputs=[str(photos)])
    outputs.check(str(tmp_path / "photos2" / "a"), "annotations", "--annotate",
                  walked_inputs=[str(photos)])


def test_best_export_is_the_newest_complete_one(tmp_path):
    run = str(tmp_path / "run")
    assert outputs.best_export(run) is None
    for stamp in ("100", "300"):
        write(os.path.join(run, "export", "best", stamp, "saved_model.pb"))
    os.makedirs(os.path.join(run, "export", "best", "400"))       # being written: no graph yet
    assert outputs.best_export(run) == os.path.join(run, "export", "best", "300")


# ---- the cases a mutation run (cosmic-ray, docs/testing.md) showed untested ------------------
def test_markers_are_compared_exactly(tmp_path):
    # Earlier versions, extra keys and neighbouring strings: equality, not ordering.
    assert not outputs.KINDS["records"][1](records(str(tmp_path / "r0"), "fer-tf-records/0"))
    assert not outputs.KINDS["soft_labels"][1](soft_labels(str(tmp_path / "s0.npz"), "fer-tf-soft-labels/0"))
    assert not outputs.KINDS["png"][1](png(str(tmp_path / "p.png"), software="paint.net"))
    assert not outputs.KINDS["tflite"][1](tflite(str(tmp_path / "t.tflite"), magic=b"TFL4"))
    assert not outputs.KINDS["tflite"][1](str(tmp_path / "missing.tflite"))
    assert outputs.KINDS["model_dir"][1](model_dir(str(tmp_path / "m"), {**RUN, "hparams": {}, "steps": 9}))
    row = {"path": "a.jpg", "frame": None, "face": 0, "box": [1, 2, 3, 4], "label": "happy"}
    assert outputs.KINDS["predictions"][1](write(str(tmp_path / "rows.jsonl"), json.dumps(row) + "\n"))


def test_a_lock_beside_other_files_is_not_a_model_dir(tmp_path):
    folder = tmp_path / "run"
    write(str(folder / ".fer_tf.lock"), "4242\n")
    write(str(folder / "labels.txt"), "cat\n")
    assert not outputs.KINDS["model_dir"][1](str(folder))
    cv = tmp_path / "cv"
    model_dir(str(cv / "fold0"))
    write(str(cv / "a_notes.txt"), "mine")
    assert not outputs.KINDS["cv_dir"][1](str(cv))


def test_each_kind_replaces_its_own_file_or_folder(tmp_path):
    annotated = str(tmp_path / "annotated")
    outputs.mark_annotations(annotated)
    write(os.path.join(annotated, "a.jpg"), "x")
    outputs.check(annotated, "annotations", "--annotate")
    outputs.check(tflite(str(tmp_path / "m.tflite")), "tflite", "--out")
    outputs.check(soft_labels(str(tmp_path / "t.npz")), "soft_labels", "--out")


def test_every_input_is_checked_and_unwritable_places_are_named(tmp_path):
    data = records(str(tmp_path / "data"))
    refused(data, "records", "is the input", inputs=[None, "", data])
    refused("/proc/fer_tf_output", "records", "cannot write in /proc", "choose a writable place")


def test_three_exports_the_newest_wins(tmp_path):
    run = str(tmp_path / "run")
    for stamp in ("100", "200", "300"):
        write(os.path.join(run, "export", "best", stamp, "saved_model.pb"))
    assert outputs.best_export(run) == os.path.join(run, "export", "best", "300")
