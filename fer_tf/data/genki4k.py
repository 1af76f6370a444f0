"""GENKI-4K reader (MPLab, UC San Diego): 4,000 photos with smile labels and head pose.

Layout: `genki4k/files/file0001.jpg ... file4000.jpg` and `genki4k/labels.txt`, whose line N
describes file N as `smile yaw pitch roll` (smile 1/0, angles in radians). Read straight from the
.tar.gz or from an extracted folder (the `genki4k` folder or its parent).
"""
import dataclasses
import os
import re
import tarfile

from fer_tf.core.errors import FerTfError

FILE_PATTERN = re.compile(r"(?:^|/)files/file(\d{4})\.jpg$")


@dataclasses.dataclass
class Photo:
    index: int          # N of fileNNNN.jpg (1-based, = the labels.txt line)
    name: str
    data: bytes
    smile: int
    pose: tuple         # (yaw, pitch, roll) in radians


def parse_labels(text, source):
    labels = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            if len(parts) != 4:
                raise ValueError(f"expected 4 values (smile yaw pitch roll), found {len(parts)}")
            smile = int(float(parts[0]))
            if smile not in (0, 1):
                raise ValueError(f"smile must be 0 or 1, found {parts[0]}")
            labels.append((smile, tuple(float(p) for p in parts[1:])))
        except ValueError as e:
            raise FerTfError(f"{source}:{number}: {e}") from None
    return labels


def _from_tar(path):
    try:
        tar = tarfile.open(path)
    except (tarfile.TarError, OSError) as e:
        raise FerTfError(f"{path}: not a readable GENKI-4K archive ({e})") from None
    with tar:
        members = tar.getmembers()
        label_member = next((m for m in members if m.name.endswith("labels.txt")), None)
        if label_member is None:
            raise FerTfError(f"{path}: no labels.txt inside; expected GENKI-4K's layout")
        labels = parse_labels(tar.extractfile(label_member).read().decode(),
                              f"{path}!{label_member.name}")
        images = sorted(((int(m.group(1)), mem) for mem in members
                         if (m := FILE_PATTERN.search(mem.name))), key=lambda t: t[0])
        for index, member in images:
            yield index, os.path.basename(member.name), tar.extractfile(member).read(), labels


def _from_folder(path):
    root = path if os.path.isfile(os.path.join(path, "labels.txt")) else os.path.join(path, "genki4k")
    labels_path = os.path.join(root, "labels.txt")
    if not os.path.isfile(labels_path):
        raise FerTfError(f"{path}: no labels.txt (looked in {root}); pass the GENKI-4K archive or "
                         "its extracted genki4k folder")
    with open(labels_path) as f:
        labels = parse_labels(f.read(), labels_path)
    folder = os.path.join(root, "files")
    names = sorted(n for n in os.listdir(folder) if FILE_PATTERN.search("files/" + n))
    for name in names:
        with open(os.path.join(folder, name), "rb") as f:
            yield int(name[4:8]), name, f.read(), labels


def read_photos(path):
    """Yield Photos in file order; every photo needs its labels.txt line."""
    if not os.path.exists(path):
        raise FerTfError(f"{path}: no such file or folder; pass genki4k.tar.gz or its extracted folder")
    stream = _from_folder(path) if os.path.isdir(path) else _from_tar(path)
    for index, name, data, labels in stream:
        if index > len(labels):
            raise FerTfError(f"{path}: {name} has no line in labels.txt ({len(labels)} lines)")
        smile, pose = labels[index - 1]
        yield Photo(index, name, data, smile, pose)


def stratified_folds(labels, folds, seed):
    """Fold id per example: per class, a seeded shuffle dealt round-robin over the folds."""
    import numpy as np
    labels = np.asarray(labels)
    assignment = np.empty(len(labels), dtype=np.int64)
    rng = np.random.RandomState(seed)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rng.shuffle(members)
        assignment[members] = np.arange(len(members)) % folds
    return assignment
