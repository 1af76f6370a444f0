"""The VGGFace2 ResNet50 (keras-vggface's `RESNET50`) as a tf.keras model, with a new expression head.

Layer names and weight shapes follow the model keras-vggface published (`conv1/7x7_s2`,
`conv2_1_1x1_reduce` ... `conv5_3_1x1_increase`, each with a `/bn`, and `activation_1` ...
`activation_49`), so its `rcmalli_vggface_tf_notop_resnet50.h5` loads by layer name
(`fer_tf.models.vggface2_weights`). Two modes, as in the seed:
  features: the whole convolutional base frozen; only the two new dense layers train;
  finetune: everything up to and including `activation_46` frozen; the last residual block
            (conv5_3) and the head train.
"""
import tensorflow as tf

from fer_tf.core.hparams import HParam
from fer_tf.models import ModelSpec, register

keras = tf.keras
L = keras.layers

# VGGFace2 preprocessing (keras-vggface utils.preprocess_input, version 2): RGB -> BGR, then
# subtract these per-channel means (in BGR order).
MEAN_BGR = (91.4953, 103.8827, 131.0912)
FREEZE_THROUGH = "activation_46"   # the seed's fine-tuning boundary: conv5_3 and the head train


def normalize(images):
    return images[..., ::-1] - tf.constant(MEAN_BGR, images.dtype)


class _Names:
    """keras-vggface's activation layers were auto-named activation_1..49 by old Keras."""

    def __init__(self):
        self.count = 0

    def relu(self, x):
        self.count += 1
        return L.Activation("relu", name=f"activation_{self.count}")(x)


def _bottleneck(x, names, filters, stage, block, strides=1, project=False):
    f1, f2, f3 = filters
    base = f"conv{stage}_{block}"
    shortcut = x
    y = L.Conv2D(f1, 1, strides=strides, use_bias=False, name=f"{base}_1x1_reduce")(x)
    y = names.relu(L.BatchNormalization(axis=3, name=f"{base}_1x1_reduce/bn")(y))
    y = L.Conv2D(f2, 3, padding="same", use_bias=False, name=f"{base}_3x3")(y)
    y = names.relu(L.BatchNormalization(axis=3, name=f"{base}_3x3/bn")(y))
    y = L.Conv2D(f3, 1, use_bias=False, name=f"{base}_1x1_increase")(y)
    y = L.BatchNormalization(axis=3, name=f"{base}_1x1_increase/bn")(y)
    if project:
        shortcut = L.Conv2D(f3, 1, strides=strides, use_bias=False, name=f"{base}_1x1_proj")(x)
        shortcut = L.BatchNormalization(axis=3, name=f"{base}_1x1_proj/bn")(shortcut)
    return names.relu(L.add([y, shortcut], name=f"{base}_add"))


# (stage, blocks, filters, first stride)
STAGES = ((2, 3, (64, 64, 256), 1), (3, 4, (128, 128, 512), 2),
          (4, 6, (256, 256, 1024), 2), (5, 3, (512, 512, 2048), 2))


def resnet50_base(x, width=1.0):
    """The convolutional base; `width` < 1 thins every layer (tests only: same names, smaller)."""
    scale = lambda n: max(1, int(round(n * width)))
    names = _Names()
    x = L.Conv2D(scale(64), 7, strides=2, padding="same", use_bias=False, name="conv1/7x7_s2")(x)
    x = names.relu(L.BatchNormalization(axis=3, name="conv1/7x7_s2/bn")(x))
    x = L.MaxPooling2D(3, strides=2, name="pool1")(x)
    for stage, blocks, filters, stride in STAGES:
        filters = tuple(scale(f) for f in filters)
        for block in range(1, blocks + 1):
            x = _bottleneck(x, names, filters, stage, block, strides=stride if block == 1 else 1,
                            project=block == 1)
    return x


def build_keras_model(num_classes, mode="finetune", image_size=(224, 224, 3), width=1.0,
                      head_units=512, keep_prob=0.5):
    """Input `image` (float RGB in [0, 255]) -> output `probabilities`."""
    if mode not in ("features", "finetune"):
        raise ValueError(f"vggface2 mode must be 'features' or 'finetune', got {mode!r}")
    image = keras.Input(shape=tuple(image_size), name="image")
    x = L.Lambda(normalize, name="vggface2_preprocess")(image)
    base_output = resnet50_base(x, width)
    x = L.GlobalAveragePooling2D(name="avg_pool")(base_output)
    x = L.Dense(head_units, activation="relu", name="fer_fc1")(x)
    x = L.Dropout(1.0 - keep_prob, name="fer_dropout")(x)
    out = L.Dense(num_classes, activation="softmax", name="probabilities")(x)
    model = keras.Model(image, out, name="vggface2_resnet50_fer")
    set_trainable(model, mode)
    return model


def base_layer_names(model):
    """Names of the layers that belong to the VGGFace2 base (what the weights file holds)."""
    names = []
    for layer in model.layers:
        if layer.name == "avg_pool":
            break
        names.append(layer.name)
    return names


def set_trainable(model, mode):
    """features: freeze the whole base; finetune: freeze through activation_46."""
    base = base_layer_names(model)
    frozen = base if mode == "features" else base[: base.index(FREEZE_THROUGH) + 1]
    for layer in model.layers:
        layer.trainable = layer.name not in frozen


def _load_weights(model, options):
    """--vggface2-weights (a local .h5), or random weights with --allow-random-init."""
    from fer_tf.models import vggface2_weights      # it imports this module
    vggface2_weights.load_or_refuse(model, options.vggface2_weights, options.allow_random_init,
                                    options.log)


SPEC = register(ModelSpec(
    name="vggface2",
    build=None,                     # a Keras model (keras_model) driven by model_to_estimator
    normalize=normalize,
    image_size=(224, 224, 3),
    hparams={"vggface2_mode": HParam("finetune", choices=("finetune", "features")),
             "learning_rate": 1e-4, "batch_size": 32, "epochs": 5,
             "head_units": 512, "keep_prob": 0.5, "width": HParam(1.0, low=0, high=1, low_open=True),
             "weight_decay": 0.0},
    description="VGGFace2 ResNet50 (keras-vggface names) fine-tuned via model_to_estimator",
    task="keras",
    keras_model=lambda num_classes, params: build_keras_model(
        num_classes, params["vggface2_mode"], width=params["width"],
        head_units=params["head_units"], keep_prob=params["keep_prob"]),
    keras_weights=lambda model, options: _load_weights(model, options),
))


def build_head_model(num_classes, feature_dim, head_units=512, keep_prob=0.5):
    """The same two new dense layers, fed by cached pooled features (the bottleneck cache)."""
    features = keras.Input(shape=(feature_dim,), name="features")
    x = L.Dense(head_units, activation="relu", name="fer_fc1")(features)
    x = L.Dropout(1.0 - keep_prob, name="fer_dropout")(x)
    out = L.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(features, out, name="vggface2_fer_head")


HEAD_SPEC = register(ModelSpec(
    name="vggface2_head",
    build=None,
    normalize=None,
    image_size=(224, 224, 3),       # of the assembled model `fer-tf export` makes
    hparams={"learning_rate": 1e-3, "batch_size": 256, "epochs": 20, "head_units": 512,
             "keep_prob": 0.5, "width": HParam(1.0, low=0, high=1, low_open=True),
             "weight_decay": 0.0, "augment": False},
    description="VGGFace2 feature-extraction head trained on a bottleneck cache (fer-tf bottleneck)",
    task="keras_head",
    keras_model=lambda num_classes, params: build_head_model(
        num_classes, max(1, int(round(2048 * params["width"]))), params["head_units"],
        params["keep_prob"]),
))
