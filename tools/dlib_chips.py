"""Cut the face chips that prove fer-tf's rebuild of dlib's ResNet equal to dlib
(tests/test_dlib_resnet.py): dlib's frontal detector and 5-point predictor on GENKI-4K photos,
`dlib.get_face_chip(image, shape, size=150, padding=0.25)` — the chips dlib's own
`compute_face_descriptor` is meant for — tiled into one JPEG (the test gives dlib and TensorFlow
the same decoded pixels, so the compression does not matter).

    python tools/dlib_chips.py ../shared/data/genki4k.tar.gz tests/data/dlib_chips.jpg --count 32
"""
import argparse
import tarfile

import dlib
import face_recognition_models
import numpy as np
from PIL import Image

SIZE, PADDING, COLUMNS = 150, 0.25, 8


def chips(archive, count, step):
    detector = dlib.get_frontal_face_detector()
    shapes = dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location())
    with tarfile.open(archive) as tar:
        photos = sorted((m for m in tar.getmembers() if m.name.lower().endswith(".jpg")),
                        key=lambda m: m.name)
        for member in photos[::step]:
            image = np.array(Image.open(tar.extractfile(member)).convert("RGB"))
            boxes = detector(image, 1)
            if boxes:
                yield dlib.get_face_chip(image, shapes(image, boxes[0]), size=SIZE, padding=PADDING)
                count -= 1
            if not count:
                return


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("archive")
    parser.add_argument("out")
    parser.add_argument("--count", type=int, default=32)
    parser.add_argument("--step", type=int, default=97, help="every STEP-th photo (spread out)")
    args = parser.parse_args()
    tiles = list(chips(args.archive, args.count, args.step))
    rows = -(-len(tiles) // COLUMNS)
    mosaic = np.zeros((rows * SIZE, COLUMNS * SIZE, 3), np.uint8)
    for i, chip in enumerate(tiles):
        r, c = divmod(i, COLUMNS)
        mosaic[r * SIZE:(r + 1) * SIZE, c * SIZE:(c + 1) * SIZE] = chip
    Image.fromarray(mosaic).save(args.out, quality=90)
    print(f"{len(tiles)} chips -> {args.out}")


if __name__ == "__main__":
    main()
