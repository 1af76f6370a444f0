"""Low-level TF1 building blocks (tf.compat.v1.get_variable + tf.nn): for models written the way
the seed wrote them, without Keras layers."""
import tensorflow as tf

v1 = tf.compat.v1


def weight(name, shape, stddev=None):
    """A kernel named `weights` (the shared model_fn applies L2 decay to those); He-normal init."""
    if stddev is None:
        fan_in = 1
        for d in shape[:-1]:
            fan_in *= int(d)
        stddev = (2.0 / fan_in) ** 0.5
    return v1.get_variable(name, shape, initializer=v1.truncated_normal_initializer(stddev=stddev))


def conv2d(x, kernel, stride=1, name=None):
    return tf.nn.conv2d(x, kernel, strides=[1, stride, stride, 1], padding="SAME", name=name)


def batch_norm(x, is_training, name, decay=0.99, epsilon=1e-3):
    """Batch norm over all but the channel axis; the moving-average updates go to UPDATE_OPS,
    which the shared model_fn runs with every training step."""
    channels = x.shape[-1]
    with v1.variable_scope(name):
        beta = v1.get_variable("beta", [channels], initializer=v1.zeros_initializer())
        gamma = v1.get_variable("gamma", [channels], initializer=v1.ones_initializer())
        moving_mean = v1.get_variable("moving_mean", [channels], trainable=False,
                                      initializer=v1.zeros_initializer())
        moving_var = v1.get_variable("moving_variance", [channels], trainable=False,
                                     initializer=v1.ones_initializer())
        if len(x.shape) != 4:
            if is_training:
                mean, var = tf.nn.moments(x, axes=list(range(len(x.shape) - 1)))
            else:
                mean, var = moving_mean, moving_var
            y = tf.nn.batch_normalization(x, mean, var, beta, gamma, epsilon)
        elif is_training:
            # The fused kernel is several times faster on CPU than moments + normalisation.
            y, mean, var = v1.nn.fused_batch_norm(x, gamma, beta, epsilon=epsilon, is_training=True)
        else:
            y, _, _ = v1.nn.fused_batch_norm(x, gamma, beta, moving_mean, moving_var,
                                             epsilon=epsilon, is_training=False)
        if is_training:
            v1.add_to_collection(v1.GraphKeys.UPDATE_OPS,
                                 v1.assign_sub(moving_mean, (1 - decay) * (moving_mean - mean)))
            v1.add_to_collection(v1.GraphKeys.UPDATE_OPS,
                                 v1.assign_sub(moving_var, (1 - decay) * (moving_var - var)))
        return y


def dropout(x, keep_prob, is_training):
    if not is_training or keep_prob >= 1.0:
        return x
    return tf.nn.dropout(x, rate=1.0 - keep_prob)


def dense(x, units, name):
    with v1.variable_scope(name):
        w = weight("weights", [int(x.shape[-1]), units])
        b = v1.get_variable("biases", [units], initializer=v1.zeros_initializer())
        return tf.matmul(x, w) + b


def global_avg_pool(x):
    """Average over the whole (static) spatial extent with tf.nn.avg_pool -> (N, C)."""
    height, width = int(x.shape[1]), int(x.shape[2])
    pooled = tf.nn.avg_pool(x, ksize=[1, height, width, 1], strides=[1, height, width, 1],
                            padding="VALID")
    return tf.reshape(pooled, [-1, int(x.shape[-1])])
