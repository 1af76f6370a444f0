"""A compact 68-point landmark network: heat maps with a sub-pixel soft-argmax, for 128x128 crops.

The seed's landmark CNN regresses 136 numbers from a 74 M-weight dense layer (290 MB); this one
keeps the spatial layout instead, which is what small landmark models that reach ~3 % NME on
300-W do (heat-map regression, e.g. the stacked-hourglass / HRNet family, shrunk):

  128 -> conv 3x3/2 (16) -> 64x64 -> conv 3x3/2 (32)
      -> 32x32: 2 conv (48) ------------------------------------.
      -> pool -> 16x16: 2 conv (96) --------------.             |
      -> pool ->  8x8:  2 conv (192)              |             |
      -> upsample x2, concat, conv (96) <---------'             |
      -> upsample x2, concat, conv (48) <-----------------------'
      -> 1x1 conv -> 68 heat maps at 32x32 -> soft-argmax -> 68 (x, y) in [0, 1]

Every convolution is 3x3 with batch norm and ReLU; `width` scales every layer. The default
width 1 (0.98 M weights, 0.47 GFLOP a pass) is the shipped model's: on the held-out faces it
beat width 0.5 (246 k weights) by 0.4 points of NME, at 1.6-1.7x dlib's time per face on an idle
machine (0.5: 1.1x) — README, landmark section. The
soft-argmax (a softmax over each map, then the expected position) is differentiable and
sub-pixel, so the network trains on the points themselves (`LandmarkHead`, with the wing loss
by default) and no heat-map targets are drawn. With `tta=flip` (the default) the crop and its
mirror image both go through the network and the mirrored points, renumbered with the 68-point
mirror permutation, are averaged — inside the graph, so evaluation and the export do the same.
"""
import tensorflow as tf

from fer_tf.data.ibug300w import MIRROR
from fer_tf.core.hparams import HParam
from fer_tf.models import ModelSpec, register

layers = tf.compat.v1.layers
GRID = 32           # heat-map side for a 128 px crop


def normalize(images):
    return images / 127.5 - 1.0


def conv_bn(x, filters, name, is_training, stride=1):
    x = layers.conv2d(x, filters, 3, strides=stride, padding="same", use_bias=False, name=name)
    return tf.nn.relu(layers.batch_normalization(x, training=is_training, fused=True,
                                                 name=f"{name}_bn"))


def cell_centres(cells, size):
    """Where each of `cells` heat-map cells is centred, as a fraction of the crop side, with the
    crop's pixel centres at 0 ... size - 1 (the records' and the training flip's convention):
    cell i spans pixels i*s ... i*s + s - 1 (s = size / cells)."""
    stride = size / cells
    return (tf.range(cells, dtype=tf.float32) * stride + (stride - 1) / 2) / size


def soft_argmax(heatmaps, temperature=1.0, size=128):
    """[N, H, W, K] scores -> [N, K, 2] expected (x, y) in [0, 1] crop coordinates: a softmax
    over each map, then the mean cell centre under it (sub-pixel by construction)."""
    height, width, k = heatmaps.shape[1], heatmaps.shape[2], heatmaps.shape[3]
    flat = tf.reshape(tf.transpose(heatmaps, [0, 3, 1, 2]), [-1, k, height * width])
    weights = tf.reshape(tf.nn.softmax(flat * temperature, axis=-1), [-1, k, height, width])
    xs, ys = cell_centres(width, size), cell_centres(height, size)
    x = tf.reduce_sum(tf.reduce_sum(weights, axis=2) * xs, axis=-1)
    y = tf.reduce_sum(tf.reduce_sum(weights, axis=3) * ys, axis=-1)
    return tf.stack([x, y], axis=-1)


def network(images, is_training, width):
    w = lambda n: max(8, int(n * width))  # noqa: E731
    x = conv_bn(images, w(16), "stem1", is_training, stride=2)          # 64 x 64
    x = conv_bn(x, w(32), "stem2", is_training, stride=2)               # 32 x 32
    skips = []
    for level, filters in enumerate((48, 96, 192), start=1):            # 32, 16, 8
        if level > 1:
            x = layers.max_pooling2d(x, 2, 2, name=f"down{level}_pool")
        x = conv_bn(x, w(filters), f"down{level}_conv1", is_training)
        x = conv_bn(x, w(filters), f"down{level}_conv2", is_training)
        skips.append(x)
    for level, (skip, filters) in enumerate(zip(reversed(skips[:-1]), (96, 48)), start=1):
        size = skip.shape[1]
        x = tf.image.resize(x, [size, size], method="bilinear")
        x = conv_bn(tf.concat([x, skip], axis=-1), w(filters), f"up{level}_conv", is_training)
    return layers.conv2d(x, 68, 1, name="heatmaps")


def build(images, num_outputs, is_training, params):
    size = images.shape[1]
    with tf.compat.v1.variable_scope("landmark_net", reuse=tf.compat.v1.AUTO_REUSE):
        points = soft_argmax(tf.cast(network(images, is_training, params["width"]), tf.float32),
                             params["temperature"], size)
        if params["tta"] == "flip" and not is_training:
            mirrored = soft_argmax(tf.cast(network(tf.reverse(images, axis=[2]), False,
                                                   params["width"]), tf.float32),
                                   params["temperature"], size)
            points = (points + flip_points(mirrored, size)) / 2.0
    return tf.reshape(points, [-1, num_outputs])


def flip_points(points, size=128):
    """Points found on the mirror image -> the original image's numbering and coordinates (the
    same convention as the training flip: pixel u <-> S - 1 - u)."""
    renumbered = tf.gather(points, MIRROR, axis=1)
    return tf.stack([(size - 1) / size - renumbered[..., 0], renumbered[..., 1]], axis=-1)


SPEC = register(ModelSpec(
    name="landmarks_hm",
    build=build,
    normalize=normalize,
    image_size=(128, 128, 3),
    label_set="landmarks68",
    hparams={"width": HParam(1.0, low=0, high=4, low_open=True),
             "temperature": HParam(1.0, low=0, low_open=True),
             "landmark_loss": HParam("wing", choices=("mse", "wing")),
             "tta": HParam("flip", choices=("none", "flip")),
             "batch_size": 16, "epochs": 60, "learning_rate": 1e-3, "weight_decay": 1e-5,
             "augment": True},
    description="compact 68-point landmarks: U-shaped 3x3 CNN, 68 heat maps, soft-argmax, flip TTA",
    task="landmarks",
))
