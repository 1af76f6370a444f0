"""dlib's face-recognition ResNet (dlib `examples/dnn_face_recognition_ex.cpp`, the public-domain
`dlib_face_recognition_resnet_model_v1.dat` in `face_recognition_models`) rebuilt with Keras layers,
and registered as an expression classifier that starts from its face-recognition weights.

The network: conv 7x7/2 (32) -> affine -> ReLU -> max-pool 3x3/2 -> 3 residual blocks of 32 ->
down + 3 of 64 -> down + 2 of 128 -> down + 2 of 256 -> down 256 -> global average pool -> fc 128
without bias (the identity embedding, used only to prove the rebuild equal to dlib). dlib's
"affine" is batch norm already folded into a per-channel scale and shift; here it is folded once
more, into the convolution before it (kernel * gamma, bias * gamma + beta), which is the same
function and trains about 1.6x faster on these CPUs than a separate scale-and-shift.

For expressions the 48 px grey faces of the records are made RGB, resized to `input_size` inside the
graph (records, augmentation and serving stay at 48 px) and classified from the 256-d pooled
features by a new linear head. The smallest input_size is 103 px: below it the last down block's
3x3/2 convolution has nothing left to convolve.
"""
import numpy as np
import tensorflow as tf

from fer_tf.core.hparams import HParam
from fer_tf.models import ModelSpec, blocks, register

L = tf.keras.layers

# dlib's input layer stores these in the file (input_rgb_image_sized): (pixel - mean) / 256, in
# RGB order. BGR input or a 127.5 mean give descriptors with cosines of 0.978-0.9995 to dlib's:
# close enough to look right, wrong all the same.
MEANS_RGB = (122.782, 117.001, 104.298)
SCALE = 256.0
STEM = ("conv1", 32, 7)                  # name, filters, size (stride 2, no padding)
# (filters, blocks, stride of the first block): the first stage keeps its size, every later one
# opens with a "down" block.
STAGES = ((32, 3, 1), (64, 4, 2), (128, 3, 2), (256, 3, 2), (256, 1, 2))
EMBEDDING = 128
CHIP_SIZE = 150                          # the size of dlib's face chips
IMAGE_SIZE = (48, 48, 1)                 # what the records, augmentation and serving carry


def block_names():
    """(conv1 name, conv2 name, stride) of every residual block in forward order."""
    names = []
    for s, (filters, count, stride) in enumerate(STAGES, start=1):
        for b in range(1, count + 1):
            base = f"stage{s}_block{b}"
            names.append((f"{base}_conv1", f"{base}_conv2", stride if b == 1 else 1, filters))
    return names


def dlib_add(tensors):
    """dlib's add_prev: the output takes the larger size in every dimension and the smaller input
    is zero-padded AT THE END of rows, columns and channels. In a down block the 3x3/2 convolution
    and the 2x2/2 pool of its input differ (at 150 px a 3x3 output meets a 4x4 shortcut, then 1x1
    meets 2x2; the channels double): top-left padding, cropping or "same" padding on the
    stride-2 layers instead give cosines of 0.5-0.91 to dlib's descriptors."""
    a, b = tensors
    target = [max(int(a.shape[i]), int(b.shape[i])) for i in (1, 2, 3)]

    def pad(t):
        return tf.pad(t, [[0, 0]] + [[0, target[i] - int(t.shape[i + 1])] for i in range(3)])

    return pad(a) + pad(b)


def _padding(stride):
    # dlib pads a stride-1 convolution by size // 2 on every side and a strided one not at all.
    return "same" if stride == 1 else "valid"


class KerasOps:
    """The layers as tf.keras layers: a Keras model (model_to_estimator, the equality proof)."""

    @staticmethod
    def conv(x, filters, size, stride, name):
        return L.Conv2D(filters, size, strides=stride, padding=_padding(stride), name=name)(x)

    relu = staticmethod(lambda x, name: L.ReLU(name=name)(x))
    max_pool = staticmethod(lambda x, name: L.MaxPooling2D(3, 2, padding="valid", name=name)(x))
    avg_pool = staticmethod(lambda x, name: L.AveragePooling2D(2, 2, padding="valid", name=name)(x))
    add = staticmethod(lambda a, b, name: L.Lambda(dlib_add, name=name)([a, b]))
    global_pool = staticmethod(lambda x: L.GlobalAveragePooling2D(name="avg_pool")(x))


class GraphOps:
    """The same layers through tf.compat.v1.layers, which honour variable scopes, reuse and
    custom getters: the shared model_fn, and the float16 / int8 rebuild of its exports."""

    @staticmethod
    def conv(x, filters, size, stride, name):
        return tf.compat.v1.layers.conv2d(x, filters, size, strides=stride,
                                          padding=_padding(stride), name=name)

    relu = staticmethod(lambda x, name: tf.nn.relu(x, name=name))
    max_pool = staticmethod(lambda x, name: tf.nn.max_pool2d(x, 3, 2, "VALID", name=name))
    avg_pool = staticmethod(lambda x, name: tf.nn.avg_pool2d(x, 2, 2, "VALID", name=name))
    add = staticmethod(lambda a, b, name: tf.identity(dlib_add([a, b]), name=name))
    global_pool = staticmethod(lambda x: tf.reduce_mean(x, axis=[1, 2]))


def trunk(x, ops=GraphOps):
    """Normalised RGB images -> the 256-d globally pooled features."""
    name, filters, size = STEM
    x = ops.max_pool(ops.relu(ops.conv(x, filters, size, 2, name), "conv1_relu"), "pool1")
    for conv1, conv2, stride, filters in block_names():
        block = conv1[:-len("_conv1")]
        y = ops.relu(ops.conv(x, filters, 3, stride, conv1), f"{conv1}_relu")
        y = ops.conv(y, filters, 3, 1, conv2)
        shortcut = x if stride == 1 else ops.avg_pool(x, f"{block}_pool")
        x = ops.relu(ops.add(y, shortcut, f"{block}_add"), f"{block}_relu")
    return ops.global_pool(x)


def normalize(images):
    """float [0, 255] faces, grey or RGB -> dlib's input scaling, RGB."""
    if images.shape[-1] == 1:
        images = tf.tile(images, [1, 1, 1, 3])
    return (images - tf.constant(MEANS_RGB, images.dtype)) / SCALE


def embedding_model(size=CHIP_SIZE):
    """RGB chips in [0, 255] -> dlib's 128-d face descriptor (the proof of equality)."""
    image = tf.keras.Input((size, size, 3), name="image")
    x = L.Lambda(normalize, name="dlib_input")(image)
    out = L.Dense(EMBEDDING, use_bias=False, name="fc")(trunk(x, KerasOps))
    return tf.keras.Model(image, out, name="dlib_face_recognition_resnet")


def expected_layers():
    """(kind, geometry, {array: shape}) of every computational layer of dlib's file, in its order;
    geometry is (filters, rows, cols, stride, padding) for convolutions, (rows, cols, stride,
    padding) for pools (0 x 0: the whole map)."""
    name, filters, size = STEM

    def con(out, size, stride, into):
        return [("con", (out, size, size, stride, size // 2 if stride == 1 else 0),
                 {"kernel": (size, size, into, out), "bias": (out,)}),
                ("affine", (), {"gamma": (out,), "beta": (out,)})]

    plan = con(filters, size, 2, 3) + [("relu", (), {}), ("max_pool", (3, 3, 2, 0), {})]
    channels = filters
    for _, _, stride, filters in block_names():
        plan += con(filters, 3, stride, channels) + [("relu", (), {})] + con(filters, 3, 1, filters)
        plan += [("avg_pool", (2, 2, 2, 0), {})] if stride != 1 else []
        plan += [("add_prev", (), {}), ("relu", (), {})]
        channels = max(channels, filters)
    return plan + [("avg_pool", (0, 0, 1, 0), {}), ("fc", (EMBEDDING,), {"kernel": (channels, EMBEDDING)})]


def folded_weights(network):
    """A read `dlib_resnet_weights.Network` -> {layer name: [kernel, bias]} for the Keras layers,
    each affine folded into its convolution; refuses a file whose layers differ, naming the first
    difference."""
    from fer_tf.models.dlib_resnet_weights import check_plan
    layers = check_plan(network, expected_layers())
    convs = trunk_layer_names()
    con = [l for l in layers if l.kind == "con"]
    affine = [l for l in layers if l.kind == "affine"]
    weights = {}
    for name, c, a in zip(convs, con, affine):
        gamma, beta = a.arrays["gamma"], a.arrays["beta"]
        weights[name] = [c.arrays["kernel"] * gamma, c.arrays["bias"] * gamma + beta]
    weights["fc"] = [layers[-1].arrays["kernel"]]
    return {k: [np.ascontiguousarray(v, np.float32) for v in vs] for k, vs in weights.items()}


def to_chip_framing(images, size, shift):
    """48 px faces -> size x size, the window moved down by `shift` of the side. Measured with
    dlib's 68-point predictor (300 FER2013 faces against the 32 test chips): FER2013 frames faces
    at dlib's chip scale (eye distance 0.360 vs 0.359 of the side) but lower (eye line at 0.391
    vs 0.308 of the height), so shift=0.085 puts the eyes where the trunk learned them. Rows
    beyond the face are the normalised mean (0)."""
    if not shift:
        return tf.image.resize(images, [size, size], method="bilinear")
    n = tf.shape(images)[0]
    box = tf.constant([[shift, 0.0, 1.0 + shift, 1.0]], tf.float32)
    return tf.image.crop_and_resize(images, tf.tile(box, [n, 1]), tf.range(n), [size, size],
                                    extrapolation_value=0.0)


def features(images, params, num_classes=None):
    """Normalised faces -> the trunk's 256-d pooled features at params["input_size"]."""
    size = params["input_size"]
    return trunk(to_chip_framing(images, size, params.get("face_shift", 0.0)), GraphOps)


def build(images, num_classes, is_training, params):
    x = features(images, params)
    dropped = tf.compat.v1.layers.dropout(x, rate=1.0 - params["keep_prob"], training=is_training)
    # The pooled features are large (norm ~19): a small start keeps the first loss near log(K).
    logits = tf.compat.v1.layers.dense(
        dropped, num_classes, kernel_initializer=tf.compat.v1.random_normal_initializer(stddev=0.001),
        name="logits")
    if not params.get("smile_head"):
        return logits
    # A logistic smile head on the same features, fitted by `fer-tf smile-head` (GENKI-4K).
    return {"logits": logits, "smile_logit": blocks.smile_head(x)}


def pretrained_checkpoint(out_dir):
    """dlib's weights as a TensorFlow checkpoint named like this model's graph (the warm start)."""
    from fer_tf.models import dlib_resnet_weights
    return dlib_resnet_weights.write_checkpoint(folded_weights(dlib_resnet_weights.read()),
                                                out_dir, skip=("fc",))


SPEC = register(ModelSpec(
    name="dlib_resnet",
    build=build,
    normalize=normalize,
    image_size=IMAGE_SIZE,
    hparams={"input_size": HParam(112, low=103), "face_shift": HParam(0.0, low=-0.25, high=0.25),
             "smile_head": HParam(False), "optimizer": "adam", "learning_rate": 1e-4,
             "weight_decay": 0.0, "keep_prob": 0.8, "label_smoothing": 0.1, "epochs": 20},
    description="dlib's face-recognition ResNet-29 (face_recognition_models), fine-tuned; "
                "48 px faces resized to input_size inside the graph",
    pretrained=pretrained_checkpoint,
    features=features,
))


# ---- the third seed's route: the same trunk as a Keras model through model_to_estimator ------
# finetune: the last down block (stage 5) and the head train, the rest stays dlib's — the seed's
# "fine-tune from a late block"; features: the whole trunk frozen, only the head trains.
FINETUNE_FROM = "stage5_"


def keras_classifier(num_classes, params):
    """48 px grey faces in [0, 255] -> `probabilities`, with the seed's two new dense layers."""
    mode = params["dlib_mode"]
    size = params["input_size"]
    image = tf.keras.Input(IMAGE_SIZE, name="image")
    x = L.Lambda(lambda t: normalize(tf.image.resize(t, [size, size])), name="dlib_input")(image)
    x = L.Dense(params["head_units"], activation="relu", name="fer_fc1")(trunk(x, KerasOps))
    x = L.Dropout(1.0 - params["keep_prob"], name="fer_dropout")(x)
    out = L.Dense(num_classes, activation="softmax", name="probabilities")(x)
    model = tf.keras.Model(image, out, name="dlib_resnet_fer")
    for name in trunk_layer_names():
        layer = model.get_layer(name)
        layer.trainable = mode == "finetune" and name.startswith(FINETUNE_FROM)
    return model


def trunk_layer_names():
    return [STEM[0]] + [n for conv1, conv2, _, _ in block_names() for n in (conv1, conv2)]


def load_keras_weights(model, options):
    """dlib's weights (affine folded) into the trunk's Keras layers; nothing is downloaded."""
    from fer_tf.models import dlib_resnet_weights
    path = dlib_resnet_weights.default_path()
    weights = folded_weights(dlib_resnet_weights.read(path))
    for name in trunk_layer_names():
        model.get_layer(name).set_weights(weights[name])
    options.log(f"loaded dlib's face-recognition ResNet into {len(trunk_layer_names())} layers "
                f"from {path}")


KERAS_SPEC = register(ModelSpec(
    name="dlib_resnet_keras",
    build=None,                     # a Keras model (keras_model) driven by model_to_estimator
    normalize=normalize,
    image_size=IMAGE_SIZE,
    hparams={"dlib_mode": HParam("finetune", choices=("finetune", "features")),
             "input_size": HParam(112, low=103), "learning_rate": 1e-4, "batch_size": 32,
             "epochs": 5, "head_units": 512, "keep_prob": 0.5, "weight_decay": 0.0},
    description="dlib's ResNet as a Keras model through model_to_estimator (the third seed's "
                "route): features (trunk frozen) or finetune (stage 5 and the head)",
    task="keras",
    keras_model=keras_classifier,
    keras_weights=load_keras_weights,
))
