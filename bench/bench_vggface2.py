"""VGGFace2 ResNet50 on this machine's CPU: training images/s through model_to_estimator in both
modes, and the bottleneck cache's speed-up for feature extraction.

Weights do not change the speed, so this runs from random weights (--allow-random-init) on the
bundled sample converted to 224x224 records unless --data is given.

    python bench/bench_vggface2.py [--data records/fer2013_224] [--steps 15] [--epochs 10]
Ends by printing the rates and the speed-up of cache + head over end-to-end feature extraction.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

SAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data",
                      "fer2013_sample.csv.gz")


def train_rate(model, data, overrides, steps, work):
    """images/s of `steps` training steps after a warm-up (graph build, first checkpoint)."""
    import dataclasses

    import tensorflow as tf
    from fer_tf.training import inputs, run, tasks
    prepared = run.prepare(model, data, overrides, seed=0)
    params, run_spec = prepared.params, dataclasses.replace(prepared.run, max_steps=10**6)
    config = tf.estimator.RunConfig(model_dir=tempfile.mkdtemp(dir=work), save_checkpoints_steps=10**6,
                                    log_step_count_steps=10**6)
    est = prepared.task.estimator(config, params, run_spec,
                                  tasks.Options(allow_random_init=True, log=lambda *_: None))
    input_fn = lambda: inputs.input_fn(tf.estimator.ModeKeys.TRAIN, params, run_spec,
                                                prepared.manifest)  # noqa: E731
    est.train(input_fn, steps=2)
    start = time.perf_counter()
    est.train(input_fn, steps=steps)
    return steps * params["batch_size"] / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="224 record folder (default: the sample, converted)")
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=10, help="epochs for the speed-up estimate")
    args = parser.parse_args()
    from fer_tf.core import logs
    from fer_tf.training import bottleneck
    from fer_tf.data import convert, records
    logs.setup()
    work = tempfile.mkdtemp(prefix="bench_vgg_")
    try:
        data = args.data
        if not data:
            data = os.path.join(work, "r224")
            convert.convert_fer2013(SAMPLE, data, size=224, progress=False)
        batch = {"batch_size": args.batch_size}
        finetune = train_rate("vggface2", data, {**batch, "vggface2_mode": "finetune"}, args.steps, work)
        print(f"finetune (conv5_3 + head train): {finetune:.2f} img/s", flush=True)
        features = train_rate("vggface2", data, {**batch, "vggface2_mode": "features"}, args.steps, work)
        print(f"features end to end (base frozen, every face through ResNet50 each epoch): "
              f"{features:.2f} img/s", flush=True)
        n = sum(split.count for split in records.read_manifest(data).splits.values())
        start = time.perf_counter()
        bottleneck.cache_features(data, os.path.join(work, "cache"), allow_random_init=True,
                                  progress=False, log=lambda *_: None)
        cache_rate = n / (time.perf_counter() - start)
        print(f"bottleneck cache (one pass over all {n} faces): {cache_rate:.2f} img/s", flush=True)
        head = train_rate("vggface2_head", os.path.join(work, "cache"), {"batch_size": 256},
                          args.steps * 4, work)
        print(f"head on cached features: {head:.0f} img/s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    n_train = 28709
    end_to_end = args.epochs * n_train / features
    cached = 35887 / cache_rate + args.epochs * n_train / head
    print(f"feature extraction, {args.epochs} epochs of FER2013 Training on this CPU: "
          f"{end_to_end / 3600:.1f} h end to end vs {cached / 3600:.2f} h with the cache "
          f"(speed-up x{end_to_end / cached:.1f}); per training image: x{head / features:.0f}")


if __name__ == "__main__":
    main()
