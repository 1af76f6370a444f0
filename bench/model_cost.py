"""Parameters and forward FLOPs (per face, at each model's own input size) of every registered
model, from the TF graph.

    python bench/model_cost.py [MODEL ...]
Ends by printing one line per model: name, parameters, MFLOPs per image.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from fer_tf import logs, models  # noqa: E402
from fer_tf.models import vggface2  # noqa: E402


FEATURE_DIM = 2048     # the ResNet50 pooled feature the vggface2 head is trained on


def cost(name, num_classes=7):
    spec = models.get(name)
    with tf.Graph().as_default() as graph:
        images = tf.compat.v1.placeholder(tf.float32, [1, *spec.image_size])
        if spec.kind == "keras":
            vggface2.build_keras_model(num_classes, image_size=spec.image_size)(images)  # own norm
        elif spec.kind == "keras_head":
            hp = spec.default_hparams()
            head = vggface2.build_head_model(num_classes, FEATURE_DIM, hp["head_units"],
                                             hp["keep_prob"])
            head(tf.compat.v1.placeholder(tf.float32, [1, FEATURE_DIM]))
        else:
            spec.build(spec.normalize(images), num_classes, False, spec.default_hparams())
        params = sum(int(np.prod(v.shape)) for v in tf.compat.v1.trainable_variables())
        opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
        opts["output"] = "none"
        flops = tf.compat.v1.profiler.profile(graph, options=opts).total_float_ops
    return params, flops


def main():
    logs.setup()
    for name in sys.argv[1:] or models.names():
        params, flops = cost(name)
        print(f"{name:10s} {params:>10,d} parameters  {flops / 1e6:8.1f} MFLOPs/image (forward)")


if __name__ == "__main__":
    main()
