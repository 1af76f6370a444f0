"""Per-model costs on this machine: parameters, forward FLOPs, training images/s through the
Estimator + input_fn, and single-image latency of the exported SavedModel (PNG bytes in).

    python bench/bench_models.py --data records/fer2013 [--exports lenet7=models/lenet7 clique=models/clique]
Models without a given export are exported after a few training steps (latency does not depend
on the weights). Ends by printing one line per model.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from common import estimator_rate, savedmodel_latency  # noqa: E402
from model_cost import cost  # noqa: E402

FACE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "face_happy.png")


def quick_export(model, data_dir, work):
    from fer_tf.training import run
    _, export = run.train(model, data_dir, os.path.join(work, model), max_steps=2,
                          log=lambda *_: None)
    return export


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="records/fer2013")
    parser.add_argument("--models", nargs="*", default=["lenet7", "clique"])
    parser.add_argument("--exports", nargs="*", default=[], metavar="MODEL=PATH")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--json")
    args = parser.parse_args()
    from fer_tf.core import logs
    logs.setup()
    exports = dict(e.split("=", 1) for e in args.exports)
    encoded = open(FACE, "rb").read()
    work = tempfile.mkdtemp(prefix="bench_models_")
    rows = {}
    try:
        for model in args.models:
            params, flops = cost(model)
            export = exports.get(model) or quick_export(model, args.data, work)
            median, p90 = savedmodel_latency(export, encoded)
            rows[model] = {"parameters": params, "mflops": flops / 1e6,
                           "train_img_s": estimator_rate(model, args.data, args.steps),
                           "latency_ms_median": median, "latency_ms_p90": p90}
            print(model, json.dumps(rows[model]), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    for model, r in rows.items():
        print(f"{model:8s} {r['parameters']:>10,d} params {r['mflops']:7.1f} MFLOPs  "
              f"train {r['train_img_s']:6.1f} img/s  latency {r['latency_ms_median']:.2f} ms "
              f"(p90 {r['latency_ms_p90']:.2f})")


if __name__ == "__main__":
    main()
