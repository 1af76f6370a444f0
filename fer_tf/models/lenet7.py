"""LeNet7: the seed's deeper LeNet for 48x48 grey faces.

LeNet-5 has two conv+pool stages; the seed adds a third stage and a third fully connected layer:
three (conv -> batch norm -> ReLU -> 2x2 max-pool) stages, then two hidden dense layers with
dropout and the output layer. Written TF1-style with tf.compat.v1.layers.
"""
from fer_tf.models import ModelSpec, blocks, register


def normalize(images):
    """[0, 255] -> roughly zero-centred [-1, 1]."""
    return images / 127.5 - 1.0


def build(images, num_classes, is_training, params):
    stages = [([(filters, size, f"conv{i}", f"bn{i}")], f"pool{i}") for i, (filters, size)
              in enumerate(zip(params["filters"], params["kernel_sizes"]), start=1)]
    x = blocks.conv_pool_stages(images, stages, is_training)
    return blocks.dense_head(x, params["fc_units"], params["keep_prob"], is_training, num_classes)


SPEC = register(ModelSpec(
    name="lenet7",
    build=build,
    normalize=normalize,
    image_size=(48, 48, 1),
    hparams={"filters": [64, 128, 256], "kernel_sizes": [5, 5, 3], "fc_units": [256, 256]},
    description="3 conv+pool stages, 3 dense layers (the seed's deeper LeNet)",
))
