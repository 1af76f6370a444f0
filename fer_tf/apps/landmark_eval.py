"""Landmark models evaluated against dlib's 68-point shape predictor on the same test faces and
boxes: NME (outer-eye-corner normalised), failure rates at 8% and 10%, CED curves of all of them
on one PNG, and per-face latency of each; and drawing the points on photos."""
import os
import time

import numpy as np

from fer_tf.core import atomic, outputs
from fer_tf import faces
from fer_tf.serving import exported
from fer_tf.apps.annotate import common_base
from fer_tf.data import ibug300w
from fer_tf.core.errors import FerTfError


def evaluate(model_paths, source, subsets=ibug300w.TEST_SUBSETS, png="ced.png", names=None):
    """Each landmark model and dlib's predictor on the same faces and boxes -> a report whose
    `rows` are {name: NME, failure rates, ms per face, per-face NME}, dlib last. Latency is
    per face on the decoded photo for all of them: the crop and a forward pass (the export's
    `crops` signature) against dlib's predictor call. `names`: the rows' names (default: the
    paths as given)."""
    from fer_tf.data.convert import face_box
    if isinstance(model_paths, str):
        model_paths = [model_paths]
    names = list(names or [str(p) for p in model_paths])
    if len(set(names)) != len(names):
        raise FerTfError(f"--model: {' '.join(names)} names one model twice")
    landmark_models = [exported.LandmarkModel(p) for p in model_paths]
    pipeline = faces.FacePipeline()
    truth, box_kinds = [], []
    predicted = {name: [] for name in names + ["dlib"]}
    seconds = {name: 0.0 for name in predicted}
    for sample in ibug300w.read_samples(source, subsets):
        rgb = faces.load_image(sample.data)
        box, kind = face_box(pipeline, rgb, sample.points)
        for name, model in zip(names, landmark_models):
            start = time.perf_counter()
            predicted[name].append(model.points_in(rgb, [box])[0])
            seconds[name] += time.perf_counter() - start
        start = time.perf_counter()
        predicted["dlib"].append(pipeline.landmarks(rgb, box))
        seconds["dlib"] += time.perf_counter() - start
        truth.append(sample.points)
        box_kinds.append(kind)
    if not truth:
        raise FerTfError(f"{source}: no faces in {', '.join(subsets)}")
    truth = np.array(truth)
    rows = {}
    for name, points in predicted.items():
        nme = ibug300w.nme(np.array(points), truth)
        rows[name] = {**summarize(nme), "latency_ms": 1000 * seconds[name] / len(truth),
                      "per_face_nme": nme.tolist()}
    plot_ced({name: row["per_face_nme"] for name, row in rows.items()}, png,
             f"CED on {', '.join(subsets)} ({len(truth)} faces)")
    return {"faces": len(truth), "boxes_from_detector": box_kinds.count("detector"),
            "subsets": list(subsets), "rows": rows, "ced_png": png}


def summarize(nme):
    """Per-face NMEs -> mean NME and failure rates: the share of faces whose NME is above 8 % and
    above 10 % of the outer-eye-corner distance (a face exactly at the threshold has not failed)."""
    nme = np.asarray(nme, np.float64)
    return {"nme": float(nme.mean()), "failure_rate_8": float((nme > 0.08).mean()),
            "failure_rate_10": float((nme > 0.10).mean())}


def plot_ced(curves, path, title, limit=0.15):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4.5))
    grid = np.linspace(0, limit, 301)
    for name, nme in curves.items():
        ax.plot(grid, [(np.asarray(nme) <= g).mean() for g in grid],
                label=f"{name} (mean NME {np.mean(nme) * 100:.2f}%)")
    for x in (0.08, 0.10):
        ax.axvline(x, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("NME (outer-eye-corner normalised)")
    ax.set_ylabel("fraction of faces")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    with atomic.atomic_file(path, "wb") as f:
        fig.savefig(f, format="png", metadata={"Software": outputs.PNG_SOFTWARE}, dpi=110)
    plt.close(fig)


def format_report(report):
    width = max(6, *(len(name) for name in report["rows"]))
    lines = [f"{report['faces']} test faces ({report['boxes_from_detector']} boxes from the dlib "
             "detector, the rest from the ground truth); the same box for all:",
             f"{'':{width}s} {'NME':>8s} {'fail@8%':>8s} {'fail@10%':>9s} {'ms/face':>8s}"]
    for name, r in report["rows"].items():
        lines.append(f"{name:{width}s} {100 * r['nme']:7.2f}% {100 * r['failure_rate_8']:7.1f}% "
                     f"{100 * r['failure_rate_10']:8.1f}% {r['latency_ms']:8.2f}")
    lines.append(f"CED curves: {report['ced_png']}")
    return "\n".join(lines)


def annotate(model_path, images, out_dir, use_dlib=False):
    """Draw 68 points on every detected face of each image; returns [(path, faces or error)]."""
    import cv2
    model = None if use_dlib else exported.LandmarkModel(model_path)
    pipeline = faces.FacePipeline()
    results = []
    outputs.mark_annotations(out_dir)
    base = common_base(images)
    for path in images:
        try:
            with open(path, "rb") as f:
                data = f.read()
            rgb = faces.load_image(data)
        except (OSError, faces.BadImage) as e:
            results.append((path, str(e)))
            continue
        pipeline.upsample = int(max(rgb.shape[:2]) < 256)
        drawn = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        boxes = [box for box, _ in pipeline.detect(rgb)]
        found = ([pipeline.landmarks(rgb, box) for box in boxes] if use_dlib
                 else list(model.points_in(rgb, boxes)))
        for box, points in zip(boxes, found):
            radius = max(1, int(round(max(rgb.shape[:2]) / 300)))
            for x, y in np.round(points).astype(int):
                cv2.circle(drawn, (int(x), int(y)), radius, (0, 255, 0), -1)
            cv2.rectangle(drawn, tuple(int(v) for v in box[:2]), tuple(int(v) for v in box[2:]),
                          (255, 160, 0), 1)
        # The input's path below the inputs' common folder: a/x.jpg and b/x.jpg stay apart.
        rel = os.path.relpath(os.path.abspath(path), base)
        target = os.path.join(out_dir, os.path.splitext(rel)[0] + ".png")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with atomic.atomic_file(target, "wb") as f:
            f.write(cv2.imencode(".png", drawn)[1].tobytes())
        results.append((path, found))
    return results
