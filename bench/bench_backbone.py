"""Benchmark the backbone on this machine: converter, input pipeline and LeNet7 training.

Prints (and with --json writes) figures for the README:
  * converter faces/s and peak RSS for the 48x48x1 and 224x224 variants on the given csv, and peak
    RSS on the small bundled sample (flat memory: the two should be about equal);
  * 224 records with 3 channels written vs grey replicated at decode: size on disk and decode rate;
  * input_fn images/s with and without augmentation;
  * LeNet7 training images/s through Estimator + input_fn vs the same network in a bare session
    on an in-memory tensor, and their ratio.
Each conversion runs in its own process so its peak RSS is its own.

    python bench/bench_backbone.py --csv ../shared/data/fer2013.csv.gz
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from common import estimator_rate  # noqa: E402

SAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data",
                      "fer2013_sample.csv.gz")


def convert_worker(csv, out, size, channels):
    from fer_tf.data import convert
    start = time.perf_counter()
    manifest = convert.convert_fer2013(csv, out, size=size, channels=channels, progress=False)
    seconds = time.perf_counter() - start
    faces = sum(split.count for split in manifest.splits.values())
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"faces": faces, "seconds": seconds, "peak_rss_mb": rss_mb}))


def run_convert(csv, out, size, channels):
    cmd = [sys.executable, __file__, "--worker", csv, out, str(size), str(channels)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=True)
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    figures["faces_per_s"] = figures["faces"] / figures["seconds"]
    figures["disk_mb"] = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out)) / 2**20
    return figures


def input_rate(data_dir, size, channels, training, augment, batches=60, batch_size=64):
    import dataclasses

    import tensorflow as tf
    from fer_tf.training import inputs, run
    prepared = run.prepare("lenet7", data_dir, {"batch_size": batch_size, "augment": augment})
    run_spec = dataclasses.replace(prepared.run, image_size=(size, size, channels))
    mode = tf.estimator.ModeKeys.TRAIN if training else tf.estimator.ModeKeys.EVAL
    it = iter(inputs.input_fn(mode, prepared.params, run_spec, prepared.manifest, split="train",
                              shuffle_buffer=2000).repeat())
    for _ in range(5):
        next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch_size / (time.perf_counter() - start)


def in_memory_rate(steps, batch_size=64):
    """The same LeNet7 + loss + Adam in a bare session, batches gathered from a constant tensor."""
    import numpy as np
    import tensorflow as tf
    from fer_tf import models
    spec = models.get("lenet7")
    params = spec.default_hparams()
    v1 = tf.compat.v1
    with tf.Graph().as_default():
        images = tf.constant(np.random.RandomState(0).randint(0, 256, (2048, 48, 48, 1)).astype(np.float32))
        labels = tf.constant(np.random.RandomState(1).randint(0, 7, 2048).astype(np.int32))
        idx = tf.random.uniform([batch_size], 0, 2048, dtype=tf.int32)
        logits = spec.build(spec.normalize(tf.gather(images, idx)), 7, True, params)
        loss = v1.losses.sparse_softmax_cross_entropy(tf.gather(labels, idx), logits)
        with tf.control_dependencies(v1.get_collection(v1.GraphKeys.UPDATE_OPS)):
            train = v1.train.AdamOptimizer(1e-3).minimize(loss)
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            for _ in range(10):
                sess.run(train)
            start = time.perf_counter()
            for _ in range(steps):
                sess.run(train)
            return steps * batch_size / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", default=SAMPLE, help="fer2013.csv(.gz) to convert")
    parser.add_argument("--steps", type=int, default=200, help="training steps per rate")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="fer_tf_bench_")
    figures = {"csv": os.path.basename(args.csv), "cpus": os.cpu_count()}
    try:
        figures["convert_sample_48"] = run_convert(SAMPLE, os.path.join(work, "s48"), 48, 1)
        for name, size, channels in (("convert_48", 48, 1), ("convert_224_gray", 224, 1),
                                     ("convert_224_rgb", 224, 3)):
            figures[name] = run_convert(args.csv, os.path.join(work, name), size, channels)
            print(name, json.dumps({k: round(v, 1) for k, v in figures[name].items()}), flush=True)
        r48 = os.path.join(work, "convert_48")
        figures["input_48_train_augment"] = input_rate(r48, 48, 1, True, True)
        figures["input_48_train_no_augment"] = input_rate(r48, 48, 1, True, False)
        figures["input_48_eval"] = input_rate(r48, 48, 1, False, False)
        figures["input_224_gray_to_rgb_at_decode"] = input_rate(
            os.path.join(work, "convert_224_gray"), 224, 3, False, False, batches=20)
        figures["input_224_rgb_stored"] = input_rate(
            os.path.join(work, "convert_224_rgb"), 224, 3, False, False, batches=20)
        figures["train_estimator_img_s"] = estimator_rate("lenet7", r48, args.steps)
        figures["train_in_memory_img_s"] = in_memory_rate(args.steps)
        figures["estimator_over_in_memory"] = (figures["train_estimator_img_s"]
                                               / figures["train_in_memory_img_s"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(figures, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)
    print(f"LeNet7 training: {figures['train_estimator_img_s']:.0f} img/s through Estimator+input_fn, "
          f"{figures['train_in_memory_img_s']:.0f} img/s in memory "
          f"(ratio {figures['estimator_over_in_memory']:.2f})")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        convert_worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        main()
