"""A user's own labelled photos, in one of two layouts:

- folder: `DIR/CLASS/.../photo.jpg` — one sub-folder per class (its name is the label), photos
  at any depth below it; files of other types are skipped and listed.
- csv: rows `path,label` or `path,label,split` (split: train, eval or test), an optional header
  `path,label[,split]`; relative paths are relative to the csv's folder.

The class list is taken from the folders or the csv (sorted), or given with `--classes` (its
order is the label order; a photo of another class is reported and left out). Every problem is
reported with its file or csv line and the rest are read.
"""
import csv
import dataclasses
import os

from fer_tf.core.errors import FerTfError
from fer_tf.faces import IMAGE_EXTENSIONS

SPLITS = ("train", "eval", "test")


@dataclasses.dataclass
class Photo:
    path: str
    label: str
    split: str = None        # from the csv; None: the converter assigns one
    where: str = None        # for messages: the path, or csv:line


def read_folder(root, classes=None):
    """-> (class names, [Photo], [problem])."""
    if not os.path.isdir(root):
        raise FerTfError(f"{root}: not a folder; --dataset folder needs one sub-folder per class")
    found = sorted(d for d in os.listdir(root)
                   if os.path.isdir(os.path.join(root, d)) and not d.startswith("."))
    problems = [f"{os.path.join(root, f)}: not inside a class folder, left out"
                for f in sorted(os.listdir(root))
                if os.path.isfile(os.path.join(root, f)) and not f.startswith(".")]
    names = list(classes) if classes else found
    photos = []
    for label in found:
        if label not in names:
            problems.append(f"{os.path.join(root, label)}: class {label!r} is not in --classes, "
                            "left out")
            continue
        for folder, dirs, files in os.walk(os.path.join(root, label)):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(folder, name)
                if name.startswith("."):
                    continue
                if os.path.splitext(name)[1].lower() not in IMAGE_EXTENSIONS:
                    problems.append(f"{path}: not an image file (by its extension), left out")
                    continue
                photos.append(Photo(path, label, where=path))
    return names, photos, problems


def read_csv(path, classes=None):
    """-> (class names, [Photo], [problem])."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as e:
        raise FerTfError(f"{path}: cannot read the csv ({getattr(e, 'strerror', None) or e})") from None
    base = os.path.dirname(os.path.abspath(path))
    start = 1
    if rows and [c.strip().lower() for c in rows[0]][:2] == ["path", "label"]:
        start = 2
        rows = rows[1:]
    photos, problems = [], []
    for number, row in enumerate(rows, start=start):
        where = f"{path}:{number}"
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        if len(cells) not in (2, 3) or not cells[0] or not cells[1]:
            problems.append(f"{where}: expected path,label[,split], found {len(cells)} value(s) "
                            f"{row!r}, left out")
            continue
        split = cells[2].lower() if len(cells) == 3 else None
        if split is not None and split not in SPLITS:
            problems.append(f"{where}: split {cells[2]!r} is not train, eval or test, left out")
            continue
        # An absolute path stays as it is: os.path.join drops `base` before it.
        photos.append(Photo(os.path.join(base, cells[0]), cells[1], split, where))
    with_split = {p.split is not None for p in photos}
    if len(with_split) > 1:
        raise FerTfError(f"{path}: some rows give a split and some do not; give a split on every "
                         "row, or on none (then a seeded stratified 8:1:1 split is made)")
    names = list(classes) if classes else sorted({p.label for p in photos})
    kept = []
    for photo in photos:
        if photo.label in names:
            kept.append(photo)
        else:
            problems.append(f"{photo.where}: label {photo.label!r} is not one of "
                            f"{', '.join(names)}, left out")
    return names, kept, problems
