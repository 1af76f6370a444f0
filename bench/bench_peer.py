"""fer-tf against the `fer` package (MIT) as its users run it: `FER().detect_emotions(image)` with
its defaults — Haar cascade, then its bundled int8 TFLite classifier (`use_tflite=True`).

The peer is installed without its dependencies (it needs nothing fer-tf does not already have
for this call path: TensorFlow, OpenCV, pandas, requests) into its own folder:

    pip download fer --no-deps -d /tmp/peer
    pip install --no-deps --target /tmp/peer/site /tmp/peer/fer-*.whl
    python bench/bench_peer.py --peer-site /tmp/peer/site --model models/default \
        --records records/fer2013 --genki ../shared/data/genki4k.tar.gz [--detector dlib]

Measured, on the same inputs, in one process:
  1. FER2013 PrivateTest accuracy of both classifiers on the 48x48 test faces (the peer's TFLite
     model at its 64x64 input);
  2. end to end on the GENKI-4K photos (file on disk -> probabilities), the two pipelines
     interleaved chunk by chunk (100 photos): faces/s, photos with a face, extra boxes (GENKI
     has one face per photo, so every further box is a false detection), seconds per stage,
     happy probability as a smile score (AUC against GENKI's labels, first face per photo);
  3. cold start: the whole process for one photo, `fer-tf predict one.jpg` against the peer's
     one-photo script, alternated, median of `--cold-runs`.
Ends by printing the ratios fer-tf / fer package.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from common import auc  # noqa: E402
from fer_tf import faces  # noqa: E402

CHUNK = 100
PEER_SCRIPT = ("import sys, cv2\nfrom fer.fer import FER\n"
               "print(FER().detect_emotions(cv2.imread(sys.argv[1])))\n")


class StageTimer:
    """Seconds per stage, accumulated by wrapping the functions that do the work."""

    def __init__(self):
        self.seconds = {}
        self.enabled = True

    def wrap(self, owner, name, stage):
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                if self.enabled:
                    self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start
        setattr(owner, name, timed)


def peer_tflite_accuracy(peer_site, records_dir, split="test"):
    """The peer's default classifier (its int8 TFLite file) on the FER2013 split."""
    import tensorflow as tf
    from fer_tf.data import records
    interpreter = tf.lite.Interpreter(os.path.join(peer_site, "fer", "data",
                                                   "emotion_model_quantized.tflite"))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    correct = total = 0
    for encoded, labels in records.iter_split(records_dir, split, 256):
        for e, label in zip(encoded, labels):
            face = cv2.resize(cv2.imdecode(np.frombuffer(e, np.uint8), cv2.IMREAD_GRAYSCALE), (64, 64))
            x = (face.astype(np.float32) / 255.0 - 0.5) * 2.0     # the peer's preprocessing (v2)
            interpreter.set_tensor(inp["index"], x[None, :, :, None])
            interpreter.invoke()
            correct += int(interpreter.get_tensor(out["index"])[0].argmax() == label)
            total += 1
    return correct / total, total


def extract_genki(archive, folder, limit=None):
    """-> [(photo path, smile 0/1)]: every photo, or `limit` of them spread evenly over the
    archive (it lists the smiling photos first)."""
    from fer_tf.data import genki4k
    photos = list(genki4k.read_photos(archive))
    step = max(1, len(photos) // limit) if limit else 1
    out = []
    for photo in photos[::step][:limit]:
        path = os.path.join(folder, photo.name)
        with open(path, "wb") as f:
            f.write(photo.data)
        out.append((path, photo.smile))
    return out


class Tally:
    def __init__(self, name):
        self.name, self.seconds, self.faces, self.with_face, self.extra = name, 0.0, 0, 0, 0
        self.happy, self.smile_labels, self.top = [], [], []

    def add(self, n_faces, happy, top, smile):
        self.faces += n_faces
        self.with_face += n_faces > 0
        self.extra += max(0, n_faces - 1)
        self.top.append(top)
        if n_faces:
            self.happy.append(happy)
            self.smile_labels.append(smile)

    def line(self, photos, stages):
        per = ", ".join(f"{stage} {1000 * s / photos:.2f}" for stage, s in stages.items())
        return (f"{self.name:12s} {photos} photos: {self.with_face} with a face, {self.extra} extra "
                f"boxes, {self.faces} faces, {self.faces / self.seconds:.1f} faces/s end to end; "
                f"ms/photo: {per}; smile AUC {auc(self.happy, self.smile_labels):.4f}")


def cold_start(command, env=None):
    """Seconds for one whole process."""
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer-site", required=True,
                        help="folder the fer wheel was installed into (pip install --no-deps --target)")
    parser.add_argument("--model", default="models/default")
    parser.add_argument("--detector", default=faces.DEFAULT_DETECTOR, choices=faces.DETECTORS)
    parser.add_argument("--records", default="records/fer2013")
    parser.add_argument("--genki", default="../shared/data/genki4k.tar.gz")
    parser.add_argument("--limit", type=int, help="use only the first N GENKI photos")
    parser.add_argument("--cold-runs", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, args.peer_site)
    import fer_tf
    from fer_tf.apps import evaluate
    from fer.fer import FER       # fer 25.10.3 no longer re-exports FER from `fer`
    import logging
    logging.getLogger("fer").setLevel(logging.WARNING)

    ours_report = evaluate.evaluate(args.model, args.records, "test",
                                    png=os.path.join(tempfile.mkdtemp(), "cm.png"))
    peer_acc, n = peer_tflite_accuracy(args.peer_site, args.records)
    print(f"FER2013 PrivateTest ({n} faces): fer-tf {ours_report['accuracy']:.4f} "
          f"(mean per class {ours_report['mean_per_class_accuracy']:.4f}), fer package "
          f"{peer_acc:.4f}", flush=True)

    folder = tempfile.mkdtemp(prefix="genki_")
    photos = extract_genki(args.genki, folder, args.limit)
    ours = {workers: fer_tf.Analyzer(args.model, smile=False, landmarks=None,
                                     detector=args.detector, workers=workers)
            for workers in (1, 2)}
    peer = FER()
    happy = ours[1].classes.index("happy")
    for analyzer in ours.values():                   # warm-up: detectors and model loaded
        analyzer.analyze_many([p for p, _ in photos[:4]])
    peer.detect_emotions(cv2.imread(photos[0][0]))
    stages = {name: StageTimer() for name in ("fer-tf", "fer package")}
    stages["fer-tf"].wrap(faces.FacePipeline, "faces", "detect")     # 1 worker: on this thread
    stages["fer-tf"].wrap(faces, "align", "align")
    stages["fer-tf"].wrap(ours[1].model, "predict_faces", "classify")
    stages["fer package"].wrap(peer, "find_faces", "detect")
    stages["fer package"].wrap(peer, "_classify_emotions", "classify")
    names = {1: "fer-tf", 2: "fer-tf x2"}
    tallies = {name: Tally(name) for name in ("fer-tf", "fer-tf x2", "fer package")}
    for start in range(0, len(photos), CHUNK):
        chunk = photos[start:start + CHUNK]
        for workers, analyzer in ours.items():
            stages["fer-tf"].enabled = workers == 1   # the pool's threads overlap: no stages
            began = time.perf_counter()
            results = analyzer.analyze_many([p for p, _ in chunk])
            tallies[names[workers]].seconds += time.perf_counter() - began
            for result, (_, smile) in zip(results, chunk):
                first = result.faces[0] if result.faces else None
                tallies[names[workers]].add(len(result.faces),
                                            first and float(first.probabilities[happy]),
                                            first and first.label, smile)
        began = time.perf_counter()
        found = [peer.detect_emotions(cv2.imread(p)) for p, _ in chunk]
        tallies["fer package"].seconds += time.perf_counter() - began
        for emotions, (_, smile) in zip(found, chunk):
            first = emotions[0]["emotions"] if emotions else None
            tallies["fer package"].add(len(emotions), first and first["happy"],
                                       first and max(first, key=first.get), smile)
    print(tallies["fer-tf"].line(len(photos), stages["fer-tf"].seconds))
    print(tallies["fer-tf x2"].line(len(photos), {}) + " (2 detection threads)")
    print(tallies["fer package"].line(len(photos), stages["fer package"].seconds))
    both = [(a, b) for a, b in zip(tallies["fer-tf"].top, tallies["fer package"].top) if a and b]
    print(f"top label agreement where both found a face: "
          f"{sum(a == b for a, b in both) / max(1, len(both)):.3f} of {len(both)} photos")

    one = photos[0][0]
    fer_tf_cli = os.path.join(os.path.dirname(sys.executable), "fer-tf")
    env_cmd = [sys.executable, "-c", PEER_SCRIPT, one]
    peer_env = dict(os.environ, PYTHONPATH=args.peer_site)
    ours_cmd = [fer_tf_cli, "predict", one, "--model", args.model, "--detector", args.detector]
    cold = {"fer-tf": [], "fer-tf --no-smile": [], "fer package": []}
    for _ in range(args.cold_runs):          # alternated, so all see the same machine state
        cold["fer-tf"].append(cold_start(ours_cmd))
        cold["fer-tf --no-smile"].append(cold_start(ours_cmd + ["--no-smile"]))
        cold["fer package"].append(cold_start(env_cmd, env=peer_env))
    ours_cold, plain_cold, peer_cold = (statistics.median(v) for v in cold.values())
    print(f"cold start, one photo, whole process (median of {args.cold_runs}): fer-tf predict "
          f"{ours_cold:.2f} s (emotion + smile; {plain_cold:.2f} s with --no-smile), fer package "
          f"script {peer_cold:.2f} s")
    rate = {k: t.faces / t.seconds for k, t in tallies.items()}
    print(f"ratio fer-tf / fer package: accuracy {ours_report['accuracy'] / peer_acc:.3f}, faces/s "
          f"{rate['fer-tf'] / rate['fer package']:.2f}x (1 thread), "
          f"{rate['fer-tf x2'] / rate['fer package']:.2f}x (2 detection threads), cold start "
          f"{ours_cold / peer_cold:.2f}x ({plain_cold / peer_cold:.2f}x with --no-smile)")


if __name__ == "__main__":
    main()
