"""68-point facial landmarks in the iBUG 300-W format (.pts), over the landmarks68_300w archive.

A .pts file: a header (`version: 1`, `n_points: 68`), `{`, 68 lines `x y`, `}`. Coordinates follow
300-W's 1-based pixel convention (the centre of the top-left pixel is (1, 1)); the reader returns
0-based coordinates (subtract 1) so they index numpy/OpenCV pixels directly.
Archive layout: `lm300w_crops/{afw,helen_trainset,helen_testset}/NAME.jpg` + `NAME.pts`.
"""
import dataclasses
import os
import tarfile

import numpy as np

from fer_tf.core.errors import FerTfError

NUM_POINTS = 68
TRAIN_SUBSETS = ("afw", "helen_trainset")
TEST_SUBSETS = ("helen_testset",)

# Horizontal mirror: point i of a flipped face is point MIRROR[i] of the original.
MIRROR = np.array(
    list(range(16, -1, -1))                      # jaw 0..16
    + list(range(26, 16, -1))                    # brows 17..21 <-> 26..22
    + list(range(27, 31))                        # nose bridge
    + list(range(35, 30, -1))                    # nose bottom 31..35
    + [45, 44, 43, 42, 47, 46]                   # eye 36..41 <-> 45..42, 47, 46
    + [39, 38, 37, 36, 41, 40]                   # eye 42..47
    + list(range(54, 47, -1))                    # outer lip top 48..54
    + list(range(59, 54, -1))                    # outer lip bottom 55..59
    + list(range(64, 59, -1))                    # inner lip top 60..64
    + list(range(67, 64, -1)))                   # inner lip bottom 65..67
OUTER_EYE_CORNERS = (36, 45)


@dataclasses.dataclass
class Sample:
    subset: str
    name: str
    data: bytes          # the JPEG
    points: np.ndarray   # (68, 2), 0-based pixel coordinates


def parse_pts(text, source="<pts>"):
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    try:
        start, end = lines.index("{"), lines.index("}")
    except ValueError:
        raise FerTfError(f"{source}: not a .pts file (no {{ ... }} block)") from None
    header = dict(l.split(":", 1) for l in lines[:start] if ":" in l)
    declared = int(header.get("n_points", NUM_POINTS))
    rows = lines[start + 1:end]
    if declared != NUM_POINTS or len(rows) != NUM_POINTS:
        raise FerTfError(f"{source}: {len(rows)} points (n_points {declared}); expected 68")
    try:
        points = np.array([[float(v) for v in row.split()] for row in rows], dtype=np.float64)
    except ValueError:
        raise FerTfError(f"{source}: point coordinates must be numbers") from None
    if points.shape != (NUM_POINTS, 2):
        raise FerTfError(f"{source}: each point needs exactly two coordinates")
    return points - 1.0                          # 1-based (300-W) -> 0-based


def write_pts(points, path):
    """0-based points -> a 300-W .pts file (1-based)."""
    with open(path, "w") as f:
        f.write(f"version: 1\nn_points:  {len(points)}\n{{\n")
        for x, y in np.asarray(points) + 1.0:
            f.write(f"{x:.6f} {y:.6f}\n")
        f.write("}\n")


def read_samples(path, subsets):
    """Yield Samples of the given subsets (sorted by name) from the archive or a folder."""
    if not os.path.exists(path):
        raise FerTfError(f"{path}: no such file or folder; pass landmarks68_300w.tar.gz or its "
                         "extracted lm300w_crops folder")
    if os.path.isdir(path):
        root = path if os.path.isdir(os.path.join(path, subsets[0])) else os.path.join(path, "lm300w_crops")
        for subset in subsets:
            folder = os.path.join(root, subset)
            for name in sorted(n[:-4] for n in os.listdir(folder) if n.endswith(".pts")):
                with open(os.path.join(folder, name + ".pts")) as f:
                    points = parse_pts(f.read(), os.path.join(folder, name + ".pts"))
                with open(os.path.join(folder, name + ".jpg"), "rb") as f:
                    yield Sample(subset, name, f.read(), points)
        return
    try:
        tar = tarfile.open(path)
    except (tarfile.TarError, OSError) as e:
        raise FerTfError(f"{path}: not a readable archive ({e})") from None
    with tar:
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
        for subset in subsets:
            pts = sorted(n for n in members if f"/{subset}/" in f"/{n}" and n.endswith(".pts"))
            for name in pts:
                image = name[:-4] + ".jpg"
                if image not in members:
                    raise FerTfError(f"{path}: {name} has no image {os.path.basename(image)}")
                points = parse_pts(tar.extractfile(members[name]).read().decode(), f"{path}!{name}")
                yield Sample(subset, os.path.basename(name)[:-4],
                             tar.extractfile(members[image]).read(), points)


def interocular(points):
    """Outer-eye-corner distance (0-based points 36 and 45), the NME normaliser."""
    a, b = OUTER_EYE_CORNERS
    return np.linalg.norm(points[..., a, :] - points[..., b, :], axis=-1)


def nme(predicted, truth):
    """Mean point-to-point error / outer-eye-corner distance, per face."""
    return np.linalg.norm(predicted - truth, axis=-1).mean(axis=-1) / interocular(truth)
