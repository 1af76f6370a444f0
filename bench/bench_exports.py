"""Classification cost of exports, measured in one run against the first one given (the
baseline): one-face latency through `image_bytes` (median of repeated calls) and faces/s at
batch 64 through `image_bytes` and through the raw `faces` signature, on FER2013 test faces.

    python bench/bench_exports.py --records records/fer2013 models/default models/vgg_fer2013 models/ensemble_fer2013
    python bench/bench_exports.py models/default --precision bf16
Ends by printing each export's faces/s relative to the baseline.
"""
import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import cv2  # noqa: E402
import numpy as np  # noqa: E402


def timed(fn, repeats):
    fn()
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("exports", nargs="+", help="the first is the baseline")
    parser.add_argument("--records", default="records/fer2013")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--precision", default="float32", choices=("float32", "bf16"),
                        help="bf16: oneDNN's bfloat16 rewrite of the graph, as `predict` uses where the CPU has it")
    args = parser.parse_args()
    from fer_tf.core import logs
    from fer_tf.data import records
    from fer_tf.serving import exported
    logs.setup()
    encoded = next(records.iter_split(args.records, "test", 64))[0]
    rates = {}
    for path in args.exports:
        model = exported.ExportedModel(path, precision=args.precision)
        height, width, channels = model.image_size
        faces = np.stack([cv2.resize(cv2.imdecode(np.frombuffer(e, np.uint8), 0), (width, height))
                          for e in encoded])[..., None]
        if channels == 3:
            faces = np.repeat(faces, 3, axis=-1)
        one = timed(lambda: model.predict(encoded[:1]), args.repeats * 3)
        batch = timed(lambda: model.predict(encoded), args.repeats)
        raw = timed(lambda: model.predict_faces(faces), args.repeats)
        rates[path] = len(encoded) / raw
        members = model.meta.members
        what = (f"ensemble of {len(members)}" if members else model.meta.model) + \
            (f", tta {model.tta}" if model.tta and model.tta != "none" else "")
        print(f"{path} ({what}): 1 face {one * 1000:.2f} ms; batch 64: "
              f"{len(encoded) / batch:.0f} faces/s from PNG bytes, {rates[path]:.0f} faces/s raw")
    base = args.exports[0]
    for path in args.exports[1:]:
        print(f"{path}: {rates[path] / rates[base]:.2f}x the faces/s of {base} (raw, batch 64)")


if __name__ == "__main__":
    main()
