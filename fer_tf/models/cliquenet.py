"""CliqueNet (Yang et al., CVPR 2018) as the seed builds it for 48x48 faces, in low-level TF.

Stem (3x3/2 conv 1->64, BN, ReLU, 3x3/2 max-pool) -> three clique blocks of 5 nodes x 36 channels,
with transitions (1x1 conv, BN, ReLU, dropout, channel-wise attention, 2x2 average pool) between
them -> each block's feature map (its input + its stage-II nodes) globally pooled and concatenated
(64+180 + 180+180 + 180+180 = 964) -> one fully connected layer.

Inside a block every pair of nodes is connected both ways. Each block owns one input->node kernel
W0[i] per node and one node->node kernel W[j->i] per ordered pair j != i:
  stage I : node i = f(conv([input, node_0 .. node_{i-1}], concat(W0[i], W[0->i] .. W[i-1->i])))
  stage II: node i = f(conv([latest node_j for j != i], concat(W[j->i] for j != i)))
The stage-II kernels are slices of the same variables stage I used: stage II creates no kernel
(f = BN -> ReLU -> dropout; each convolution has its own batch norm, whose statistics differ).
"""
import tensorflow as tf

from fer_tf.models import ModelSpec, register
from fer_tf.models import tf_ops as ops

v1 = tf.compat.v1


def block_kernels(in_channels, k, nodes, size=3):
    """Create the block's kernels: W0[i] (in -> node i) and W[(j, i)] (node j -> node i)."""
    w0 = [ops.weight(f"input_to_node{i}/weights", [size, size, in_channels, k]) for i in range(nodes)]
    w = {(j, i): ops.weight(f"node{j}_to_node{i}/weights", [size, size, k, k])
         for i in range(nodes) for j in range(nodes) if j != i}
    return w0, w


def stage_one(x, w0, w, keep_prob, is_training):
    nodes = []
    for i in range(len(w0)):
        # One convolution over [input, node_0..node_{i-1}] with the concatenated kernel.
        kernel = tf.concat([w0[i]] + [w[(j, i)] for j in range(i)], axis=2)
        data = tf.concat([x] + nodes, axis=3)
        node = ops.batch_norm(ops.conv2d(data, kernel, name=f"stage1_conv{i}"), is_training,
                             f"stage1_bn{i}")
        nodes.append(ops.dropout(tf.nn.relu(node), keep_prob, is_training))
    return nodes


def stage_two(nodes, w, keep_prob, is_training):
    nodes = list(nodes)
    for i in range(len(nodes)):
        others = [j for j in range(len(nodes)) if j != i]
        kernel = tf.concat([w[(j, i)] for j in others], axis=2)
        data = tf.concat([nodes[j] for j in others], axis=3)   # nodes < i already updated
        node = ops.batch_norm(ops.conv2d(data, kernel, name=f"stage2_conv{i}"), is_training,
                             f"stage2_bn{i}")
        nodes[i] = ops.dropout(tf.nn.relu(node), keep_prob, is_training)
    return nodes


def clique_block(x, k, nodes, keep_prob, is_training):
    """-> (stage-II nodes concatenated, feature map = [block input, stage-II nodes])."""
    w0, w = block_kernels(int(x.shape[-1]), k, nodes)
    stage_one_nodes = stage_one(x, w0, w, keep_prob, is_training)
    out = tf.concat(stage_two(stage_one_nodes, w, keep_prob, is_training), axis=3)
    return out, tf.concat([x, out], axis=3)


def channel_attention(x, reduction=2):
    """Squeeze-and-excitation style: GAP -> FC C/2 -> ReLU -> FC C -> sigmoid -> scale channels."""
    channels = int(x.shape[-1])
    a = ops.global_avg_pool(x)
    a = tf.nn.relu(ops.dense(a, channels // reduction, "attention_fc1"))
    a = tf.sigmoid(ops.dense(a, channels, "attention_fc2"))
    return x * a[:, None, None, :]


def transition(x, keep_prob, is_training, attention):
    channels = int(x.shape[-1])
    x = ops.conv2d(x, ops.weight("conv1x1/weights", [1, 1, channels, channels]))
    x = ops.dropout(tf.nn.relu(ops.batch_norm(x, is_training, "bn")), keep_prob, is_training)
    if attention:
        x = channel_attention(x)
    return tf.nn.avg_pool(x, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="SAME")


def build(images, num_classes, is_training, params):
    keep_prob = params["keep_prob"]
    with v1.variable_scope("stem"):
        x = ops.conv2d(images, ops.weight("conv/weights", [3, 3, int(images.shape[-1]), 64]), 2)
        x = tf.nn.relu(ops.batch_norm(x, is_training, "bn"))
        x = tf.nn.max_pool(x, ksize=[1, 3, 3, 1], strides=[1, 2, 2, 1], padding="SAME")
    features = []
    for b in range(params["clique_blocks"]):
        if b > 0:
            with v1.variable_scope(f"transition{b}"):
                x = transition(x, keep_prob, is_training, params["attention"])
        with v1.variable_scope(f"block{b + 1}"):
            x, feature_map = clique_block(x, params["clique_k"], params["clique_nodes"],
                                          keep_prob, is_training)
        features.append(ops.global_avg_pool(feature_map))
    fused = tf.concat(features, axis=1, name="fused_features")   # 964 wide with the defaults
    return ops.dense(fused, num_classes, "logits")


def normalize(images):
    return images / 127.5 - 1.0


SPEC = register(ModelSpec(
    name="clique",
    build=build,
    normalize=normalize,
    image_size=(48, 48, 1),
    hparams={"clique_k": 36, "clique_nodes": 5, "clique_blocks": 3, "attention": True,
             "keep_prob": 0.9, "weight_decay": 1e-4},
    description="low-level CliqueNet: 3 clique blocks, attention transitions, multi-scale fusion",
))
