"""VGG-style network for 48x48 faces, chosen for accuracy per CPU second.

Every FER2013 recipe above 72 % from scratch is a plain VGG (Pramerdorfer & Kampel 2016;
Khaireddin & Chen 2021): stacks of 3x3 convolutions with batch norm, which a CPU runs at close
to its peak (few, large convolutions — unlike CliqueNet's many small ones). Four blocks of two
(conv 3x3 -> BN -> ReLU), 2x2 max-pool after each, then two dense layers with dropout.

Trained on random `crop_size` crops of the 48 px face (see `model_fn.crop_views`): evaluation and
serving take the centre crop, or average ten crops when exported with ten-crop TTA.
"""
from fer_tf.core.hparams import HParam
from fer_tf.models import ModelSpec, blocks, register


def normalize(images):
    """[0, 255] -> roughly zero-centred [-1, 1]."""
    return images / 127.5 - 1.0


def _network(images, num_classes, is_training, params):
    convs = range(1, params["convs_per_block"] + 1)
    stages = [([(width, 3, f"block{b}_conv{c}", f"block{b}_bn{c}") for c in convs], f"block{b}_pool")
              for b, width in enumerate(params["widths"], start=1)]
    x = blocks.conv_pool_stages(images, stages, is_training)
    return blocks.dense_head(x, params["fc_units"], params["keep_prob"], is_training, num_classes,
                             with_features=True)


def build(images, num_classes, is_training, params):
    logits, hidden = _network(images, num_classes, is_training, params)
    if not params.get("smile_head"):
        return logits
    return {"logits": logits, "smile_logit": blocks.smile_head(hidden)}


def features(images, params, num_classes):
    """The last hidden layer (what a smile head reads), at inference."""
    return _network(images, num_classes, False, params)[1]


SPEC = register(ModelSpec(
    name="vgg",
    build=build,
    normalize=normalize,
    image_size=(48, 48, 1),
    hparams={"widths": [48, 96, 192, 384], "convs_per_block": 2, "fc_units": [512, 512],
             "crop_size": 40, "random_erasing": 0.5, "optimizer": "momentum",
             "learning_rate": 0.01, "weight_decay": 5e-4, "label_smoothing": 0.1, "epochs": 40,
             "smile_head": HParam(False)},
    description="VGG-style: 4 blocks x 2 conv3x3+BN (48-384 wide), dense 512-512; 40 px crops",
    features=features,
))
