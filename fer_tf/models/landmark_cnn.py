"""The fourth seed's 68-point landmark CNN (its layer table), TF1-style tf.compat.v1.layers:

input 128x128x3 -> conv 3x3x32 -> max-pool 2/2 -> conv 3x3x64 x2 -> max-pool 2/2 -> conv 3x3x64 x2
-> max-pool 2/1 -> conv 3x3x128 x2 -> max-pool 2/1 -> conv 3x3x256 -> dense 1024 -> 136 outputs
(x, y of 68 points in crop-normalised coordinates). Valid padding and ReLU as in the seed. Its loss
is the mean squared error (the seed first used mean_pairwise_squared_error, which only constrains
the differences between points: it learnt the face's shape but not where it is).

`batch_norm` (on by default) puts batch normalisation between each convolution and its ReLU, the
output layer starts at zero weights with every point at the crop centre, and Adam runs at 1e-4.
The plain table with Adam 1e-3, as first trained here on 300-W, sat on the mean shape (training
NME 0.20-0.22 from step 100 to 400, eval NME 0.16, the mean shape's own 0.154): Adam moves each of
the 74 M dense weights by about the learning rate per step, which swamps a 74,000-wide fan-in.
`--hparams batch_norm=false learning_rate=1e-3` gives the seed's exact recipe.
"""
import tensorflow as tf

from fer_tf.core.hparams import HParam
from fer_tf.models import ModelSpec, register

layers = tf.compat.v1.layers

# (filters, pool after: None or (size, stride))
TABLE = ((32, (2, 2)), (64, None), (64, (2, 2)), (64, None), (64, (2, 1)),
         (128, None), (128, (2, 1)), (256, None))


def normalize(images):
    return images / 255.0


def build(images, num_outputs, is_training, params):
    x = images
    bn = params["batch_norm"]
    for i, (filters, pool) in enumerate(TABLE, start=1):
        x = layers.conv2d(x, int(filters * params["width"]), 3, padding="valid", use_bias=not bn,
                          activation=None if bn else tf.nn.relu, name=f"conv{i}")
        if bn:
            x = tf.nn.relu(layers.batch_normalization(x, training=is_training, fused=True,
                                                      name=f"bn{i}"))
        if pool:
            x = layers.max_pooling2d(x, pool[0], pool[1], padding="valid", name=f"pool{i}")
    x = layers.flatten(x)
    x = layers.dense(x, params["dense_units"], activation=tf.nn.relu, name="dense1")
    x = layers.dropout(x, rate=1.0 - params["keep_prob"], training=is_training)
    return layers.dense(x, num_outputs, kernel_initializer=tf.compat.v1.zeros_initializer(),
                        bias_initializer=tf.compat.v1.constant_initializer(0.5), name="logits")


SPEC = register(ModelSpec(
    name="landmarks",
    build=build,
    normalize=normalize,
    image_size=(128, 128, 3),
    label_set="landmarks68",
    hparams={"width": HParam(1.0, low=0, high=4, low_open=True), "dense_units": 1024, "keep_prob": 1.0, "batch_norm": True, "batch_size": 32,
             "epochs": 100, "learning_rate": 1e-4, "weight_decay": 0.0, "augment": True},
    description="the fourth seed's 68-point landmark CNN (MSE on crop-normalised points)",
    task="landmarks",
))
