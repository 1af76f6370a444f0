"""The output rule every writing command shares: fer-tf replaces only what fer-tf wrote.

`check(path, kind, flag, inputs)` runs before any work starts. It refuses, with one line naming
the path and what to do:
- anything at the path that fer-tf did not write, or wrote as another kind (a record folder is
  not an export, a model dir is neither);
- the current directory, the home directory or the file-system root;
- a path that is, contains or (for folders that the command walks) lies inside one of the
  command's own inputs;
- a path that cannot be written: a file where a folder is needed, or a read-only place.
Replacement itself stays atomic (`fer_tf.core.atomic`): written beside, then renamed.
"""
import contextlib
import glob
import json
import os
import tempfile

from fer_tf.core import export_format
from fer_tf.core.errors import FerTfError

# Each kind: how fer-tf recognises its own output of that kind (False for anything else).
RECORDS_FORMAT = "fer-tf-records/1"
SOFT_LABELS_FORMAT = "fer-tf-soft-labels/1"
ANNOTATIONS_MARKER = ".fer_tf_annotations"
RUN_META = "fer_tf_run.json"
META_FILE, LABELS_FILE = export_format.META_FILE, export_format.LABELS_FILE
PNG_SOFTWARE = "fer-tf"
TABLE_HEADER = "# fer-tf predict"
CSV_HEADER_START = "path,frame,face,left,top,right,bottom,label,"


def _json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _is_records(path):
    manifest = _json(os.path.join(path, "manifest.json"))
    return isinstance(manifest, dict) and manifest.get("format") == RECORDS_FORMAT


def _is_export(path):
    return (os.path.isfile(os.path.join(path, "saved_model.pb"))
            and isinstance(_json(export_format.meta_path(path)), dict))


# What `fer-tf train` writes into a model dir before fer_tf_run.json (cluster tasks start together).
RUN_EARLY_FILES = (META_FILE, LABELS_FILE, ".fer_tf.lock", "steps", "eval_history.json")
RUN_KEYS = {"model", "label_set", "image_size"}          # fer_tf_run.json holds at least these
EXPORT_META_KEYS = RUN_KEYS | {"hparams"}               # and fer_tf.json these


def _holds(path, keys):
    meta = _json(path)
    return isinstance(meta, dict) and keys <= set(meta)


def _is_model_dir(path):
    """Recognised by fer-tf's own marker files and their content, never by common names alone:
    a user's folder holding a labels.txt and a steps/ folder is not a model dir."""
    if _holds(os.path.join(path, RUN_META), RUN_KEYS):
        return True
    entries = os.listdir(path)
    early = all(e in RUN_EARLY_FILES or any(e.startswith(f".{f}.") for f in RUN_EARLY_FILES)
                for e in entries)
    if not early:
        return False
    # A cluster worker's own metadata can precede the chief's fer_tf_run.json; a run that died
    # while taking its lock leaves only the lock file, which holds its pid.
    if _holds(os.path.join(path, META_FILE), EXPORT_META_KEYS):
        return True
    return entries == [".fer_tf.lock"] and _is_pid_file(os.path.join(path, ".fer_tf.lock"))


def _is_pid_file(path):
    try:
        with open(path) as f:
            text = f.read(32)
    except (OSError, UnicodeDecodeError):
        return False
    return text.strip().isdigit() or text == ""


def _is_cv_dir(path):
    entries = os.listdir(path)
    return bool(entries) and all(
        e == "cv.json" or (e.startswith("fold") and _is_model_dir(os.path.join(path, e)))
        for e in entries)


def _is_annotations(path):
    return os.path.isfile(os.path.join(path, ANNOTATIONS_MARKER))


def _is_png(path):
    try:
        from PIL import Image
        with Image.open(path) as image:
            return image.format == "PNG" and image.info.get("Software") == PNG_SOFTWARE
    except Exception:      # not an image at all
        return False


def _is_predictions(path):
    try:
        with open(path, encoding="utf-8") as f:
            first = f.readline()
    except (OSError, UnicodeDecodeError):
        return False
    if first.startswith(TABLE_HEADER) or first.startswith(CSV_HEADER_START):
        return True
    try:
        row = json.loads(first)
    except ValueError:
        return False
    return isinstance(row, dict) and {"path", "frame", "face"} <= set(row)


def _is_tflite(path):
    sidecar = _json(os.path.splitext(path)[0] + ".json")
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return False
    return head[4:8] == b"TFL3" and isinstance(sidecar, dict) and "label_set" in sidecar


def soft_labels_meta(path):
    """The JSON meta of a soft-label file (fer_tf/data/soft_labels.py), or None for any other."""
    import numpy as np
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
    except (OSError, ValueError, KeyError, EOFError):
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == SOFT_LABELS_FORMAT else None


def _is_soft_labels(path):
    return soft_labels_meta(path) is not None


# kind -> (is a folder, recogniser, what it is called)
KINDS = {
    "records": (True, _is_records, "a fer-tf record folder"),
    "export": (True, _is_export, "a fer-tf SavedModel export"),
    "model_dir": (True, _is_model_dir, "a fer-tf training model dir"),
    "cv_dir": (True, _is_cv_dir, "a fer-tf cross-validation folder"),
    "annotations": (True, _is_annotations, "a fer-tf annotation folder"),
    "png": (False, _is_png, "a PNG written by fer-tf"),
    "predictions": (False, _is_predictions, "a fer-tf predict output"),
    "tflite": (False, _is_tflite, "a fer-tf TFLite model"),
    "soft_labels": (False, _is_soft_labels, "a fer-tf soft-label file"),
}


def describe(path):
    """What fer-tf recognises at an existing path, for refusals ("a fer-tf record folder")."""
    for kind, (folder, recognise, name) in KINDS.items():
        if folder == os.path.isdir(path) and recognise(path):
            return name
    return None


def _inside(child, parent):
    return child == parent or child.startswith(parent.rstrip(os.sep) + os.sep)


def _probe_writable(folder, flag, path):
    """Create and remove a file: catches read-only mounts and permissions, even for root."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".fer_tf_probe-", dir=folder)
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        raise FerTfError(f"{flag} {path}: cannot write in {folder} ({e.strerror}); choose a "
                         "writable place") from None


def check(path, kind, flag, inputs=(), walked_inputs=()):
    """Refuse an output path before work starts (see the module docstring). `inputs` are the
    command's input files and folders; `walked_inputs` are folders the command reads
    recursively, which the output must not lie inside either."""
    folder, recognise, name = KINDS[kind]
    if not path:
        raise FerTfError(f"{flag}: empty path; give a {'folder' if folder else 'file'} name")
    full = os.path.realpath(path)
    special = {os.path.realpath(os.getcwd()): "the current directory",
               os.path.realpath(os.path.expanduser("~")): "your home directory",
               os.path.realpath(os.sep): "the file-system root"}
    if full in special:
        raise FerTfError(f"{flag} {path}: is {special[full]}; fer-tf writes only to a new "
                         f"{'folder' if folder else 'file'} of its own — give a new path")
    for source in inputs:
        if not source:
            continue
        source_full = os.path.realpath(source)
        if _inside(source_full, full):
            raise FerTfError(f"{flag} {path}: {'is' if source_full == full else 'contains'} the "
                             f"input {source}; write the output somewhere else")
    for source in walked_inputs:
        if source and os.path.isdir(source) and _inside(full, os.path.realpath(source)):
            raise FerTfError(f"{flag} {path}: lies inside the input folder {source}; write the "
                             "output somewhere else")
    if os.path.lexists(path):
        if folder and not os.path.isdir(path):
            raise FerTfError(f"{flag} {path}: is a file, not a folder; give a folder path "
                             "(fer-tf will not replace the file)")
        if not folder and os.path.isdir(path):
            raise FerTfError(f"{flag} {path}: is a folder; give a file path")
        if folder and os.listdir(path) and not recognise(path):
            other = describe(path)
            what = f"it is {other}" if other else "it holds files fer-tf did not write"
            raise FerTfError(f"{flag} {path}: {what}; fer-tf replaces only {name} — give a new "
                             "or empty folder, or remove it yourself")
        if not folder and os.path.getsize(path) and not recognise(path):
            raise FerTfError(f"{flag} {path}: exists and is not {name}; fer-tf replaces only its "
                             "own output — give a new file name, or remove it yourself")
        _probe_writable(path if folder else os.path.dirname(full), flag, path)
        return
    # A new path: its nearest existing ancestor must be a folder we can write in.
    parent = os.path.dirname(full)
    while not os.path.lexists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise FerTfError(f"{flag} {path}: {parent} is a file, not a folder; choose another path")
    _probe_writable(parent, flag, path)


def mark_annotations(folder):
    """Mark a folder as fer-tf's annotation output (what `check(..., 'annotations')` accepts)."""
    os.makedirs(folder, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        with open(os.path.join(folder, ANNOTATIONS_MARKER), "x") as f:
            f.write("annotated copies written by fer-tf; fer-tf may replace this folder's files\n")


def best_export(model_dir):
    """The newest SavedModel under MODEL_DIR/export/best (None before the first export)."""
    found = sorted(d for d in glob.glob(os.path.join(model_dir, "export", "best", "*"))
                   if os.path.isfile(os.path.join(d, "saved_model.pb")))
    return found[-1] if found else None
