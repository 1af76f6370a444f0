"""Landmark evaluation against dlib's 68-point shape predictor on the same test faces and boxes:
NME (outer-eye-corner normalised), failure rates at 8% and 10%, CED curves as a PNG, and
per-face latency of both."""
import os
import time

import numpy as np

from fer_tf import atomic, faces, outputs
from fer_tf.serving import exported
from fer_tf.annotate import common_base
from fer_tf.data import ibug300w
from fer_tf.errors import FerTfError


def evaluate(model_path, source, subsets=ibug300w.TEST_SUBSETS, png="ced.png", log=print):
    from fer_tf.data.convert import face_box
    model = exported.LandmarkModel(model_path)
    pipeline = faces.FacePipeline()
    truth, ours, theirs, box_kinds = [], [], [], []
    t_ours = t_dlib = 0.0
    for sample in ibug300w.read_samples(source, subsets):
        rgb = faces.load_image(sample.data)
        box, kind = face_box(pipeline, rgb, sample.points)
        start = time.perf_counter()
        ours.append(model.points(sample.data, box))
        t_ours += time.perf_counter() - start
        start = time.perf_counter()
        theirs.append(pipeline.landmarks(rgb, box))
        t_dlib += time.perf_counter() - start
        truth.append(sample.points)
        box_kinds.append(kind)
    if not truth:
        raise FerTfError(f"{source}: no faces in {', '.join(subsets)}")
    truth = np.array(truth)
    report = {"faces": len(truth), "boxes_from_detector": box_kinds.count("detector")}
    for name, predicted, seconds in (("cnn", np.array(ours), t_ours), ("dlib", np.array(theirs), t_dlib)):
        nme = ibug300w.nme(predicted, truth)
        report[name] = {"nme": float(nme.mean()), "failure_rate_8": float((nme > 0.08).mean()),
                        "failure_rate_10": float((nme > 0.10).mean()),
                        "latency_ms": 1000 * seconds / len(truth), "per_face_nme": nme}
    plot_ced({k: report[k]["per_face_nme"] for k in ("cnn", "dlib")}, png,
             f"CED on {', '.join(subsets)} ({len(truth)} faces)")
    for k in ("cnn", "dlib"):
        report[k]["per_face_nme"] = report[k]["per_face_nme"].tolist()
    report["ced_png"] = png
    return report


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
    lines = [f"{report['faces']} test faces ({report['boxes_from_detector']} boxes from the dlib "
             "detector, the rest from the ground truth); the same box for both:",
             f"{'':6s} {'NME':>8s} {'fail@8%':>8s} {'fail@10%':>9s} {'ms/face':>8s}"]
    for name in ("cnn", "dlib"):
        r = report[name]
        lines.append(f"{name:6s} {100 * r['nme']:7.2f}% {100 * r['failure_rate_8']:7.1f}% "
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
        found = []
        for box, _ in pipeline.detect(rgb):
            points = pipeline.landmarks(rgb, box) if use_dlib else model.points(data, box)
            found.append(points)
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
