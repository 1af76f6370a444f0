"""Steps/s and images/s of LeNet7 training with 1 process vs a chief + worker on loopback
(MultiWorkerMirroredStrategy, same global batch), measured from each task's step log
(MODEL_DIR/steps/*.json, excluding start-up). On one 2-core machine both workers share the
cores, so this shows the overhead of synchronous data parallelism, not a speed-up.

    python bench/bench_scaleout.py --data records/fer2013 --steps 300
Ends by printing both rates and their ratio.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
import local_cluster  # noqa: E402


def rate(model_dir, task):
    with open(os.path.join(model_dir, "steps", f"{task}.json")) as f:
        return json.load(f)["steps_per_s_after_first"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="records/fer2013")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64, help="global batch")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="bench_scaleout_")
    common = ["train", "--data", args.data, "--max-steps", str(args.steps), "--checkpoint-steps",
              str(args.steps), "--hparams", f"batch_size={args.batch_size}"]
    try:
        single = os.path.join(work, "single")
        subprocess.run([sys.executable, "-m", "fer_tf.apps.cli", *common, "--model-dir", single],
                       check=True, capture_output=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        one = rate(single, "local_0")
        multi = os.path.join(work, "multi")
        _, status = local_cluster.launch(common + ["--model-dir", multi, "--strategy", "multi_worker"],
                                         workers=1, logs=os.path.join(work, "logs"))
        assert all(c == 0 for c in status.values()), status
        two = rate(multi, "chief_0")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"1 process : {one:.2f} steps/s = {one * args.batch_size:.0f} images/s")
    print(f"2 workers : {two:.2f} steps/s = {two * args.batch_size:.0f} images/s (global batch "
          f"{args.batch_size}, {args.batch_size // 2} per worker)")
    print(f"ratio 2 workers / 1 process: {two / one:.2f}")


if __name__ == "__main__":
    main()
