"""LeNet7: the seed's deeper LeNet for 48x48 grey faces.

LeNet-5 has two conv+pool stages; the seed adds a third stage and a third fully connected layer:
three (conv -> batch norm -> ReLU -> 2x2 max-pool) stages, then two hidden dense layers with
dropout and the output layer. Written TF1-style with tf.compat.v1.layers.
"""
import tensorflow as tf

from fer_tf.models import ModelSpec, register

layers = tf.compat.v1.layers


def normalize(images):
    """[0, 255] -> roughly zero-centred [-1, 1]."""
    return images / 127.5 - 1.0


def build(images, num_classes, is_training, params):
    x = images
    for i, (filters, size) in enumerate(zip(params["filters"], params["kernel_sizes"]), start=1):
        x = layers.conv2d(x, filters, size, padding="same", use_bias=False, name=f"conv{i}")
        x = layers.batch_normalization(x, training=is_training, name=f"bn{i}")
        x = tf.nn.relu(x)
        x = layers.max_pooling2d(x, 2, 2, name=f"pool{i}")
    x = layers.flatten(x)
    for j, units in enumerate(params["fc_units"], start=1):
        x = layers.dense(x, units, use_bias=False, name=f"fc{j}")
        x = layers.batch_normalization(x, training=is_training, name=f"fc{j}_bn")
        x = tf.nn.relu(x)
        x = layers.dropout(x, rate=1.0 - params["keep_prob"], training=is_training)
    return layers.dense(x, num_classes, name="logits")


SPEC = register(ModelSpec(
    name="lenet7",
    build=build,
    normalize=normalize,
    image_size=(48, 48, 1),
    hparams={"filters": [64, 128, 256], "kernel_sizes": [5, 5, 3], "fc_units": [256, 256]},
    description="3 conv+pool stages, 3 dense layers (the seed's deeper LeNet)",
))
