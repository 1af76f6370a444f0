"""Distillation data for the compact landmark model: faces from unlabelled photos, with dlib's
68-point predictor's points as labels, added as a `pseudo` split to a copy of a landmark record
folder.

300-W gives 1,089 annotated training faces here; dlib's predictor was trained on the whole 300-W
training set (3,148 faces) and scores 2.85 % NME on helen_testset, so its points on other faces
carry what the small set lacks. Each photo's most confident dlib face (box side >= 48 px) is
cropped exactly as `fer-tf records --dataset landmarks` crops (1.5x the box, 128x128) and its 68
points become the label. The source folder's splits are copied unchanged: train on
`--train-split train+pseudo` and select on `eval` (real annotations only).

    python tools/pseudo_landmarks.py ../shared/data/genki4k.tar.gz --records records/landmarks \
        --out records/landmarks_pseudo

PHOTOS is GENKI-4K's archive or any folder of photos. Ends by printing how many faces it added.
"""
import argparse
import os
import shutil
import sys

from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from fer_tf.core import atomic, outputs
from fer_tf import faces
from fer_tf.apps import predict  # noqa: E402
from fer_tf.data import genki4k, records  # noqa: E402
from fer_tf.core.errors import FerTfError  # noqa: E402
from fer_tf.faces import crops  # noqa: E402

MIN_BOX_SIDE = 48
SPLIT = "pseudo"


GENKI_PHOTOS = 4000


def photos(source):
    """-> (count, iterator of (name, encoded bytes)) of GENKI-4K's archive or folder, or of any
    folder of photos."""
    if source.endswith((".tar.gz", ".tgz")) or os.path.isfile(os.path.join(source, "labels.txt")):
        return GENKI_PHOTOS, ((photo.name, photo.data) for photo in genki4k.read_photos(source))
    if not os.path.isdir(source):
        raise FerTfError(f"{source}: not GENKI-4K's archive or a folder of photos")
    paths = [path for kind, path in predict.expand_paths([source]) if kind == "image"]

    def read(path):
        with open(path, "rb") as f:
            return os.path.relpath(path, source), f.read()
    return len(paths), map(read, paths)


def label_faces(source, writer, log):
    """Write one pseudo-labelled crop per photo with a face; -> (added, skipped)."""
    pipeline = faces.FacePipeline()
    added = skipped = 0
    count, items = photos(source)
    for name, data in tqdm(items, total=count, desc="photos", unit=" photos", mininterval=1.0):
        try:
            rgb = faces.load_image(data)
        except faces.BadImage as e:
            log(f"{name}: skipped ({e})")
            skipped += 1
            continue
        pipeline.upsample = int(max(rgb.shape[:2]) < faces.SMALL_IMAGE_SIDE)
        found = pipeline.detect(rgb)
        box = found[0][0] if found else None
        if box is None or min(box[2] - box[0], box[3] - box[1]) < MIN_BOX_SIDE:
            skipped += 1
            continue
        window = crops.crop_window(box)
        points = pipeline.landmarks(rgb, box)
        writer.write(SPLIT, records.make_landmark_example(
            crops.crop_face(rgb, window), crops.to_crop_coords(points, window), window, box,
            "dlib_pseudo", f"pseudo/{name}"), 0)
        added += 1
    return added, skipped


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("photos", help="GENKI-4K's archive or a folder of photos")
    parser.add_argument("--records", required=True, help="a landmark record folder to extend")
    parser.add_argument("--out", required=True, help="the new record folder")
    args = parser.parse_args()
    try:
        manifest = records.read_manifest(args.records)
        if manifest.kind != "landmarks" or SPLIT in manifest.splits:
            raise FerTfError(f"--records {args.records}: not a landmark record folder without a "
                             f"{SPLIT!r} split")
        outputs.check(args.out, "records", "--out", inputs=[args.photos, args.records])
        with atomic.atomic_directory(args.out) as tmp:
            for split in manifest.splits.values():
                for shard in split.shards:
                    shutil.copy2(os.path.join(args.records, shard), os.path.join(tmp, shard))
            writer = records.ShardedWriter(tmp, [SPLIT], {SPLIT: 2}, 1)
            try:
                added, skipped = label_faces(args.photos, writer, lambda m: print(m, file=sys.stderr))
            finally:
                writer.close()
            manifest.splits[SPLIT] = records.Split(**writer.split_summary()[SPLIT])
            manifest.extra["pseudo_labels"] = {"source": os.path.basename(os.path.normpath(args.photos)),
                                         "labeller": "dlib shape_predictor_68_face_landmarks",
                                         "faces": added, "photos_skipped": skipped}
            records.write_manifest(tmp, manifest)
    except FerTfError as e:
        sys.exit(f"pseudo_landmarks: {e}")
    others = ", ".join(f"{name} {split.count}" for name, split in manifest.splits.items()
                       if name != SPLIT)
    print(f"wrote {args.out}: {added} pseudo-labelled faces ({skipped} photos without a usable "
          f"face) beside {others}")


if __name__ == "__main__":
    main()
