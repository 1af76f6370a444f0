"""fer-tf's face pipeline with each detector on GENKI-4K photos: dlib (HOG detector + 68-point
alignment, the seed's pipeline), dlib with its 5-point predictor's eyes (`--align 5`), dlib's
detector with the shipped compact landmark model's 68 points (`--landmarks cnn`), BlazeFace's
short-range model (tf.lite, aligned on its eye keypoints) and `blazeface_auto` (the default: the
short range, and the full range for wide shots). All run interleaved photo by photo in one process, classifying with the same export through its raw `faces`
signature, batched. A last row measures the classifier's own noise floor: dlib's faces with the
eye centres moved at random by 2 % of their distance (`--jitter`).

Reports per detector: photos with a face, photos with more than one box (GENKI has one face a
photo: extra boxes are false detections), per-stage milliseconds, end-to-end faces/s, the
happy probability's AUC as a smile score, and top-label agreement with the dlib pipeline.

    python bench/bench_pipeline.py --genki ../shared/data/genki4k.tar.gz --model models/default \
        [--limit N] [--pipelines "dlib 5-pt" blazeface ...]
Ends by printing the speed ratios and the agreements with the default (dlib, 68 points).
"""
import argparse
import os
import sys
import tarfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

from common import auc  # noqa: E402
from fer_tf import faces  # noqa: E402


def photos(archive, limit=None):
    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers()}
        labels_name = next(n for n in members if n.endswith("labels.txt"))
        smiles = [int(line.split()[0]) for line in tar.extractfile(members[labels_name]).read().decode().splitlines()]
        names = sorted(n for n in members if n.endswith(".jpg"))
        # A limit takes every k-th photo (the archive lists the smiles first).
        step = max(1, len(names) // limit) if limit else 1
        for index in range(0, len(names), step)[:limit]:
            yield names[index], tar.extractfile(members[names[index]]).read(), smiles[index]


def first_face(pipeline, rgb, box, score):
    """The most confident dlib box with the points its pipeline aligns on (dlib's 68, the
    landmark model's 68, or dlib's 5-point eyes)."""
    if pipeline.points_model is not None:
        return faces.Face(box, pipeline.points_model.points_in(rgb, [box])[0], score)
    if pipeline.align_points == 68:
        return faces.Face(box, pipeline.landmarks(rgb, box), score)
    return faces.Face(box, None, score, pipeline.five_point_eyes(rgb, box))


PIPELINES = ("dlib", "dlib 5-pt", "dlib cnn", "blazeface", "blazeface auto")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genki", required=True, help="genki4k.tar.gz")
    parser.add_argument("--model", default="models/default")
    parser.add_argument("--limit", type=int, help="only the first N photos")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--pipelines", nargs="+", choices=PIPELINES[1:], default=PIPELINES[1:],
                        help="the pipelines compared with dlib's (always run: the baseline)")
    parser.add_argument("--jitter", type=float, default=0.02,
                        help="the noise-floor row: dlib's eye centres each moved this fraction of "
                             "their distance in a random direction")
    parser.add_argument("--landmarks-model", default="landmarks",
                        help="landmark export for the `dlib cnn` pipeline (default: the shipped one)")
    args = parser.parse_args()
    from fer_tf.core import logs
    from fer_tf.serving import exported
    logs.setup()
    model = exported.ExportedModel(args.model)
    size, channels = model.image_size[0], model.image_size[2]
    for _ in range(3):                         # warm up the signature before timing it
        model.predict_faces(np.zeros((args.batch_size, *model.image_size), np.uint8))
    happy = [i for i, c in enumerate(model.label_set.classes) if c in ("happy", "happiness")][0]
    chosen = ("dlib",) + tuple(args.pipelines)
    if "dlib cnn" in chosen:
        points_model = exported.LandmarkModel(args.landmarks_model, "--landmarks-model")
        points_model.points_in(np.zeros((256, 256, 3), np.uint8), [(64, 64, 192, 192)])  # warm up
    makers = {"dlib": lambda: faces.FacePipeline(detector="dlib", landmarks=False),
              "dlib 5-pt": lambda: faces.FacePipeline(detector="dlib", landmarks=False, align_points=5),
              "dlib cnn": lambda: faces.FacePipeline(detector="dlib", points_model=points_model),
              "blazeface": lambda: faces.FacePipeline(detector="blazeface", landmarks=False),
              "blazeface auto": lambda: faces.FacePipeline(detector="blazeface_auto", landmarks=False)}
    detectors = {name: makers[name]() for name in chosen}
    stats = {name: {"detect": 0.0, "align": 0.0, "classify": 0.0, "found": 0, "extra": 0,
                    "crops": [], "owners": []} for name in detectors}
    # The classifier's own noise floor: dlib's faces again, the eyes moved by a small random
    # amount (what separates two good alignments), classified the same way. No timing.
    jitter = {"crops": [], "owners": []}
    rng = np.random.RandomState(0)
    smiles, decode_time, count = [], 0.0, 0
    for name, data, smile in photos(args.genki, args.limit):
        start = time.perf_counter()
        rgb = faces.load_image(data)
        decode_time += time.perf_counter() - start
        smiles.append(smile)
        for detector, pipeline in detectors.items():
            s = stats[detector]
            dlib = detector.startswith("dlib")
            pipeline.upsample = int(max(rgb.shape[:2]) < 256) if dlib else 0
            start = time.perf_counter()
            if dlib:
                boxes = pipeline.detect(rgb)
                found = [first_face(pipeline, rgb, *boxes[0])] if boxes else []
            else:
                found = pipeline.faces(rgb)
                boxes = found
            middle = time.perf_counter()
            if found:
                s["found"] += 1
                s["extra"] += len(boxes) - 1
                s["crops"].append(faces.align(rgb, found[0].alignment_points, size, channels))
                s["owners"].append(count)
            s["detect"] += middle - start
            s["align"] += time.perf_counter() - middle
            if found and detector == "dlib":
                eyes = np.array(faces.eye_centres(found[0].landmarks))
                angles = rng.uniform(0, 2 * np.pi, 2)
                moved = eyes + (args.jitter * np.hypot(*(eyes[1] - eyes[0]))
                                * np.stack([np.cos(angles), np.sin(angles)], axis=1))
                jitter["crops"].append(faces.align(rgb, moved, size, channels))
                jitter["owners"].append(count)
        count += 1
    probabilities = {}
    for detector, s in list(stats.items()) + [("dlib jittered", jitter)]:
        crops = np.stack(s["crops"])
        start = time.perf_counter()
        probs = np.concatenate([model.predict_faces(crops[i:i + args.batch_size])
                                for i in range(0, len(crops), args.batch_size)])
        s["classify"] = time.perf_counter() - start
        probabilities[detector] = dict(zip(s["owners"], probs))
    print(f"{count} GENKI-4K photos, model {args.model}; JPEG decode {decode_time / count * 1000:.2f} ms/photo (shared)")
    rates = {}
    for detector, s in stats.items():
        total = decode_time + s["detect"] + s["align"] + s["classify"]
        rates[detector] = s["found"] / total
        owners = sorted(probabilities[detector])
        score = auc([probabilities[detector][o][happy] for o in owners], [smiles[o] for o in owners])
        print(f"{detector:10s}: faces in {s['found']} photos, {s['extra']} extra boxes; "
              f"detect {s['detect'] / count * 1000:.2f} ms/photo, align {s['align'] / max(s['found'], 1) * 1000:.2f} ms/face, "
              f"classify {s['classify'] / max(s['found'], 1) * 1000:.3f} ms/face (batch {args.batch_size}); "
              f"end to end {rates[detector]:.1f} faces/s; happy-probability AUC for smiles {score:.4f}")
    pairs = [("dlib jittered", "dlib")] + [(other, "dlib") for other in args.pipelines]
    if {"blazeface", "blazeface auto"} <= set(chosen):
        pairs.append(("blazeface auto", "blazeface"))
    for other, base in pairs:
        both = sorted(set(probabilities[base]) & set(probabilities[other]))
        same = sum(probabilities[base][o].argmax() == probabilities[other][o].argmax()
                   for o in both)
        speed = (f"eyes moved {args.jitter:.0%} of their distance (noise floor)"
                 if other == "dlib jittered" else
                 f"end-to-end faces/s: {rates[other] / rates[base]:.2f}x")
        print(f"{other} / {base} {speed}; top label the same on {same} of {len(both)} photos "
              f"both found ({same / len(both):.1%})")


if __name__ == "__main__":
    main()
