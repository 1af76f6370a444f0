"""The first seed's small smile CNN for 64x64 grey faces (GENKI-4K after dlib cropping): four
(3x3 conv -> ReLU -> 2x2 max-pool) stages with 32, 64, 128, 128 filters, dropout, one dense layer
of 512 and a two-way output. TF1-style tf.compat.v1.layers."""
import tensorflow as tf

from fer_tf.models import ModelSpec, register

layers = tf.compat.v1.layers


def normalize(images):
    return images / 255.0


def build(images, num_classes, is_training, params):
    x = images
    for i, filters in enumerate(params["filters"], start=1):
        x = layers.conv2d(x, filters, 3, padding="same", activation=tf.nn.relu, name=f"conv{i}")
        x = layers.max_pooling2d(x, 2, 2, name=f"pool{i}")
    x = layers.flatten(x)
    x = layers.dropout(x, rate=1.0 - params["keep_prob"], training=is_training)
    x = layers.dense(x, params["fc_units"], activation=tf.nn.relu, name="fc1")
    return layers.dense(x, num_classes, name="logits")


SPEC = register(ModelSpec(
    name="smile",
    build=build,
    normalize=normalize,
    image_size=(64, 64, 1),
    hparams={"filters": [32, 64, 128, 128], "fc_units": 512, "keep_prob": 0.5, "epochs": 30,
             "batch_size": 32, "learning_rate": 1e-3, "weight_decay": 0.0},
    description="the first seed's small CNN for smile / no smile (GENKI-4K, 64x64 grey)",
))
