"""Layer blocks several architectures share (TF1-style tf.compat.v1.layers); the variable names
are the caller's, so checkpoints keep loading."""
import tensorflow as tf

layers = tf.compat.v1.layers


def conv_bn_relu(x, filters, size, is_training, conv_name, bn_name):
    """conv (no bias: batch norm has one) -> batch norm -> ReLU."""
    x = layers.conv2d(x, filters, size, padding="same", use_bias=False, name=conv_name)
    x = layers.batch_normalization(x, training=is_training, name=bn_name)
    return tf.nn.relu(x)


def conv_pool_stages(x, stages, is_training):
    """Stages of conv_bn_relu layers, each stage followed by a 2x2 max-pool; `stages` is a list
    of ([(filters, size, conv_name, bn_name), ...], pool_name)."""
    for convs, pool_name in stages:
        for filters, size, conv_name, bn_name in convs:
            x = conv_bn_relu(x, filters, size, is_training, conv_name, bn_name)
        x = layers.max_pooling2d(x, 2, 2, name=pool_name)
    return x


def dense_head(x, units, keep_prob, is_training, num_classes, with_features=False):
    """flatten -> (dense -> batch norm -> ReLU -> dropout) per entry of `units` -> logits;
    variables fc1, fc1_bn, ..., logits. with_features: (logits, the last hidden layer before its
    dropout), for a second head on the same features."""
    x = hidden = layers.flatten(x)
    for j, width in enumerate(units, start=1):
        x = layers.dense(x, width, use_bias=False, name=f"fc{j}")
        x = layers.batch_normalization(x, training=is_training, name=f"fc{j}_bn")
        x = hidden = tf.nn.relu(x)
        x = layers.dropout(x, rate=1.0 - keep_prob, training=is_training)
    logits = layers.dense(x, num_classes, name="logits")
    return (logits, hidden) if with_features else logits


def smile_head(features):
    """A logistic smile head on a network's features (fitted by `fer-tf smile-head`) -> logit [N]."""
    from fer_tf.models import SMILE_HEAD
    return layers.dense(features, 1, name=SMILE_HEAD)[:, 0]
