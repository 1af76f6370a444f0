"""Dataset -> record folder conversions, streamed one face at a time into sharded TFRecords."""
import os

import cv2
import numpy as np
from tqdm import tqdm

from fer_tf.core import atomic
from fer_tf import faces
from fer_tf.data import records
from fer_tf.core import labels as label_sets
from fer_tf.data import fer2013
from fer_tf.core.errors import FerTfError

SPLITS = ("train", "eval", "test")


def default_shards(train_shards):
    return {"train": train_shards, "eval": max(1, train_shards // 4), "test": max(1, train_shards // 4)}


def archive_source(source):
    """A converter's source: an archive (name and SHA-256) or a folder (name only)."""
    return {"path": os.path.basename(source),
            "sha256": records.sha256_of_checked(source) if os.path.isfile(source) else None}


def resize_face(image, size, channels):
    """48x48 grey -> size x size with `channels` (grey replicated when 3)."""
    if image.shape[0] != size:
        # Bilinear, like the tf.image.resize the serving path applies to a face of another size.
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)
    if channels == 3:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return image


def convert_fer2013(csv_path, out_dir, ferplus_path=None, size=48, channels=1, split="usage",
                    seed=0, shards=8, skip_bad=False, progress=True, ferplus_rule="majority",
                    log=print):
    """Convert fer2013.csv (+ optional FER+ votes) into a record folder; returns the manifest."""
    if channels not in (1, 3):
        raise FerTfError(f"--channels must be 1 or 3, got {channels}")
    if not 8 <= size <= 1024:
        raise FerTfError(f"--size must be between 8 and 1024, got {size}")
    if split not in ("usage", "stratified"):
        raise FerTfError(f"--split must be 'usage' or 'stratified', got {split!r}")
    fer2013.check_ferplus_rule(ferplus_rule)
    label_set = label_sets.FERPLUS8 if ferplus_path else label_sets.FER7
    source = {"path": os.path.basename(csv_path), "sha256": records.sha256_of_checked(csv_path)}
    if ferplus_path:
        source.update(ferplus_path=os.path.basename(ferplus_path),
                      ferplus_sha256=records.sha256_of_checked(ferplus_path),
                      ferplus_rule=ferplus_rule)

    def faces(stats, desc):
        stream = fer2013.read_faces(csv_path, ferplus_path, skip_bad=skip_bad, stats=stats,
                                    ferplus_rule=ferplus_rule)
        total = fer2013.count_lines(csv_path) if progress else None
        # The bar counts csv rows read (FER+ may drop some), so it ends at 100 %.
        with tqdm(desc=desc, unit=" rows", total=total, disable=not progress,
                  mininterval=1.0) as bar:
            for face in stream:
                bar.update(stats.rows - bar.n)
                yield face
            bar.update(stats.rows - bar.n)

    assignment = None
    if split == "stratified":
        # First pass keeps only (row, label) so the split can be stratified without holding images.
        rows, row_labels = [], []
        for face in faces(fer2013.ReadStats(), "scanning labels"):
            rows.append(face.row)
            row_labels.append(face.label)
        assignment = dict(zip(rows, fer2013.stratified_splits(row_labels, seed)))

    stats = fer2013.ReadStats()
    with atomic.atomic_directory(out_dir) as tmp:
        writer = records.ShardedWriter(tmp, SPLITS, default_shards(shards), label_set.num_classes)
        try:
            for face in faces(stats, f"writing {os.path.basename(out_dir)}"):
                target = (assignment[face.row] if assignment is not None
                          else fer2013.USAGE_TO_SPLIT[face.usage])
                image = resize_face(face.image, size, channels)
                writer.write(target, records.make_example(image, face.label, face.row, face.votes),
                             face.label)
        finally:
            writer.close()
        summary = writer.split_summary()
        empty = [s for s in SPLITS if summary[s]["count"] == 0]
        if empty:
            hint = ("use --split stratified or a csv with Training, PublicTest and PrivateTest rows"
                    if split == "usage" else "the csv has too few rows per class")
            raise FerTfError(f"{csv_path}: split(s) {', '.join(empty)} would be empty; {hint}")
        manifest = records.write_manifest(tmp, records.Manifest(
            dataset="ferplus" if ferplus_path else "fer2013", label_set=label_set.to_json(),
            image=records.Manifest.image_info(size, channels), has_votes=bool(ferplus_path),
            splits=summary, source=source,
            options={"split": split, "seed": seed if split == "stratified" else None,
                     "shards": shards, "skip_bad": skip_bad},
            extra={"read": stats.to_json()}))
    for message in stats.bad_examples:
        log(f"skipped: {message}")
    if stats.bad_rows:
        log(f"skipped {stats.bad_rows} bad row(s) of {stats.rows}")
    return manifest


class PhotoFaces:
    """One face per labelled photo, through the face pipeline: the most confident face aligned
    at size x size, or a centre crop (`centre_crop_fallback`), or nothing; it keeps the lists
    of photos without a face, centre-cropped and unreadable for the manifest."""

    def __init__(self, size, channels, detector="dlib", upsample=None, centre_crop_fallback=False):
        self.pipeline = faces.FacePipeline(detector=detector, landmarks=False)
        self.size, self.channels, self.upsample = size, channels, upsample
        self.centre_crop_fallback = centre_crop_fallback
        self.failed, self.centre_cropped, self.unreadable = [], [], []

    def crop(self, source, name):
        """A path or encoded bytes -> uint8 face crop, or None (recorded under `name`)."""
        try:
            rgb = faces.load_image(source)
        except faces.BadImage as e:
            self.unreadable.append(f"{name}: {e}")
            return None
        crop = faces.best_face_crop(self.pipeline, rgb, self.size, self.channels,
                                         self.upsample)
        if crop is None and self.centre_crop_fallback:
            self.centre_cropped.append(name)
            return faces.centre_crop(rgb, self.size, self.channels)
        if crop is None:
            self.failed.append(name)
        return crop

    def report(self, photos):
        return {"photos": photos, "detected": photos - len(self.failed) - len(self.unreadable)
                - len(self.centre_cropped), "detection_failed": self.failed,
                "centre_cropped": self.centre_cropped, "unreadable": self.unreadable}

    def summary(self, photos):
        detected = self.report(photos)["detected"]
        return (f"faces found in {detected} of {photos} photos"
                + (f"; {len(self.failed)} without a face dropped" if self.failed else "")
                + (f"; {len(self.centre_cropped)} centre-cropped" if self.centre_cropped else "")
                + (f"; {len(self.unreadable)} unreadable" if self.unreadable else ""))


def convert_genki(source, out_dir, size=64, channels=1, folds=10, seed=0, centre_crop_fallback=False,
                  upsample=None, progress=True, detector="dlib", log=print):
    """GENKI-4K -> records: each photo's most confident face (dlib or BlazeFace), aligned like
    FER2013 faces (the shared face pipeline), in `folds` stratified, seeded folds (splits fold0 ... foldK-1;
    train/eval/test alias folds 0..K-3, K-2, K-1). Photos without a detected face are listed in
    the manifest and dropped, or centre-cropped with `centre_crop_fallback`."""
    from fer_tf.data import genki4k
    if folds < 3:
        raise FerTfError(f"--folds must be at least 3, got {folds}")
    label_set = label_sets.SMILE2
    smiles = [photo.smile for photo in genki4k.read_photos(source)]
    if not smiles:
        raise FerTfError(f"{source}: no GENKI-4K photos found")
    fold_of = genki4k.stratified_folds(smiles, folds, seed)
    names = [f"fold{k}" for k in range(folds)]
    cropper = PhotoFaces(size, channels, detector, upsample, centre_crop_fallback)
    with atomic.atomic_directory(out_dir) as tmp:
        writer = records.ShardedWriter(tmp, names, {n: 1 for n in names}, label_set.num_classes)
        try:
            for i, photo in enumerate(tqdm(genki4k.read_photos(source), total=len(smiles),
                                           desc="detecting and aligning", unit=" photos",
                                           disable=not progress, mininterval=1.0)):
                crop = cropper.crop(photo.data, photo.name)
                if crop is None:
                    continue
                example = records.make_example(crop, photo.smile, photo.index, pose=photo.pose)
                writer.write(names[fold_of[i]], example, photo.smile)
        finally:
            writer.close()
        manifest = records.write_manifest(tmp, records.Manifest(
            dataset="genki4k", label_set=label_set.to_json(),
            image=records.Manifest.image_info(size, channels), splits=writer.split_summary(),
            source=archive_source(source),
            options={"size": size, "channels": channels, "detector": detector,
                     "centre_crop_fallback": centre_crop_fallback, "upsample": upsample},
            extra={"split_aliases": {"train": "+".join(names[:-2]), "eval": names[-2],
                                     "test": names[-1]},
                   "folds": {"count": folds, "seed": seed, "stratified_by": "smile"},
                   "faces": cropper.report(len(smiles))}))
    log(cropper.summary(len(smiles)))
    return manifest


def convert_landmarks(source, out_dir, size=128, val_fraction=0.1, seed=0, progress=True, log=print):
    """300-W faces -> 128x128x3 crops with crop-normalised points. Train on afw + helen_trainset
    (a seeded `val_fraction` of it held out as eval), test on helen_testset. The crop is taken
    around the dlib detector's box where it finds the face (IoU > 0.3 with the points' box), else
    around the ground-truth box; the box and window are stored so points map back to the photo."""
    from fer_tf.faces import crops as landmark_crops
    from fer_tf.data import ibug300w
    pipeline = faces.FacePipeline()
    label_set = label_sets.LANDMARKS68
    rng = np.random.RandomState(seed)
    box_sources = {"detector": 0, "ground_truth": 0}
    with atomic.atomic_directory(out_dir) as tmp:
        writer = records.ShardedWriter(tmp, SPLITS, {"train": 4, "eval": 1, "test": 1}, 1)
        try:
            for split_group, subsets in (("train", ibug300w.TRAIN_SUBSETS), ("test", ibug300w.TEST_SUBSETS)):
                for sample in tqdm(ibug300w.read_samples(source, subsets), desc=f"{split_group} faces",
                                   unit=" faces", disable=not progress, mininterval=1.0):
                    rgb = faces.load_image(sample.data)
                    box, kind = face_box(pipeline, rgb, sample.points)
                    box_sources[kind] += 1
                    window = landmark_crops.crop_window(box)
                    crop = landmark_crops.crop_face(rgb, window, size)
                    split = split_group if split_group == "test" else (
                        "eval" if rng.rand() < val_fraction else "train")
                    example = records.make_landmark_example(
                        crop, landmark_crops.to_crop_coords(sample.points, window), window, box,
                        kind, f"{sample.subset}/{sample.name}")
                    writer.write(split, example, 0)
        finally:
            writer.close()
        manifest = records.write_manifest(tmp, records.Manifest(
            dataset="ibug300w", kind="landmarks", label_set=label_set.to_json(),
            image=records.Manifest.image_info(size, 3), splits=writer.split_summary(),
            source=archive_source(source),
            options={"size": size, "val_fraction": val_fraction, "seed": seed,
                     "train": list(ibug300w.TRAIN_SUBSETS), "test": list(ibug300w.TEST_SUBSETS)},
            extra={"boxes": box_sources, "crop_scale": landmark_crops.CROP_SCALE}))
    log(f"face boxes: {box_sources['detector']} from the dlib detector, "
        f"{box_sources['ground_truth']} from the ground-truth points")
    return manifest


def face_box(pipeline, rgb, points):
    """The detector's box overlapping the annotated face, else the points' own box."""
    from fer_tf.faces import crops as landmark_crops
    truth = landmark_crops.box_of(points)
    pipeline.upsample = int(max(rgb.shape[:2]) < 256)
    for box, _ in pipeline.detect(rgb):
        if landmark_crops.iou(box, truth) > 0.3:
            return box, "detector"
    return truth, "ground_truth"


def convert_photos(source, out_dir, layout, size=48, channels=1, seed=0, classes=None,
                   centre_crop_fallback=False, detector="dlib", upsample=None, shards=4,
                   progress=True, log=print):
    """A user's labelled photos (`layout` folder or csv, see photos.py) -> records: each photo's
    most confident face aligned like FER2013 faces at size x size (the same face pipeline as
    `fer-tf predict`), split as the csv says or by a seeded stratified 8:1:1 split. Photos
    without a face are dropped (or centre-cropped) and, with unreadable ones, listed in the
    manifest and reported one line each."""
    from fer_tf.data import photos as photo_sets
    read = photo_sets.read_folder if layout == "folder" else photo_sets.read_csv
    names, items, problems = read(source, classes)
    label_set = label_sets.custom(names)
    for problem in problems:
        log(f"skipped: {problem}")
    if not items:
        raise FerTfError(f"{source}: no labelled photos found")
    index = {name: i for i, name in enumerate(names)}
    split_from = "csv" if items[0].split is not None else "stratified"
    if split_from == "stratified":
        for photo, split in zip(items, fer2013.stratified_splits([index[p.label] for p in items],
                                                                 seed)):
            photo.split = split
    cropper = PhotoFaces(size, channels, detector, upsample, centre_crop_fallback)
    with atomic.atomic_directory(out_dir) as tmp:
        writer = records.ShardedWriter(tmp, SPLITS, default_shards(shards), label_set.num_classes)
        try:
            for i, photo in enumerate(tqdm(items, desc="detecting and aligning", unit=" photos",
                                           disable=not progress, mininterval=1.0)):
                crop = cropper.crop(photo.path, photo.where)
                if crop is None:
                    continue
                label = index[photo.label]
                writer.write(photo.split, records.make_example(crop, label, i), label)
        finally:
            writer.close()
        summary = writer.split_summary()
        empty = [s for s in SPLITS if summary[s]["count"] == 0]
        if empty:
            raise FerTfError(f"{source}: split(s) {', '.join(empty)} would be empty "
                             f"({sum(v['count'] for v in summary.values())} faces); add photos "
                             "(about 10 per class at least) or give the splits in a csv")
        manifest = records.write_manifest(tmp, records.Manifest(
            dataset=layout, label_set=label_set.to_json(),
            image=records.Manifest.image_info(size, channels), splits=summary,
            source={"path": os.path.basename(os.path.normpath(source)), "sha256": None},
            options={"size": size, "channels": channels, "seed": seed, "detector": detector,
                     "centre_crop_fallback": centre_crop_fallback, "upsample": upsample,
                     "classes_given": bool(classes), "split": split_from},
            extra={"faces": {**cropper.report(len(items)), "left_out": problems}}))
    for what in cropper.unreadable:
        log(f"skipped: {what}")
    for where in cropper.failed:
        log(f"skipped: {where}: no face found (--centre-crop-fallback keeps it as a centre crop)")
    log(cropper.summary(len(items)))
    return manifest
