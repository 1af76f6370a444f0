"""Parameters and forward FLOPs (per face, at each model's own input size) of every registered
model, from the TF graph.

    python bench/model_cost.py [MODEL ...]
Ends by printing one line per model: name, parameters, MFLOPs per image.
"""
import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from fer_tf.core import logs
from fer_tf import models  # noqa: E402
from fer_tf.training import tasks  # noqa: E402


def cost(name, num_classes=7):
    """(parameters, forward FLOPs of one image) with the model's defaults — for a landmark model
    its 136 outputs, and its test-time views if it builds them in (as served)."""
    spec = models.get(name)
    if tasks.of(spec).points:
        num_classes = 136
    with tf.Graph().as_default() as graph:
        hp = spec.default_hparams()
        if spec.keras_model:            # a Keras model (it normalises inside)
            model = spec.keras_model(num_classes, hp)
            model(tf.compat.v1.placeholder(tf.float32, [1, *model.input_shape[1:]]))
        else:
            images = tf.compat.v1.placeholder(tf.float32, [1, *spec.image_size])
            spec.build(spec.normalize(images), num_classes, False, hp)
        params = sum(int(np.prod(v.shape)) for v in tf.compat.v1.trainable_variables())
        opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
        opts["output"] = "none"
        flops = tf.compat.v1.profiler.profile(graph, options=opts).total_float_ops
    return params, flops


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="registered model names (default: all)")
    args = parser.parse_args()
    logs.setup()
    for name in args.models or models.names():
        params, flops = cost(name)
        print(f"{name:10s} {params:>10,d} parameters  {flops / 1e6:8.1f} MFLOPs/image (forward)")


if __name__ == "__main__":
    main()
