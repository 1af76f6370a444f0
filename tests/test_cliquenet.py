"""CliqueNet's structure: kernels per block, stage II reusing stage I's variables, gradients,
the 964-wide fusion, attention switchable."""
import numpy as np
import pytest
import tensorflow as tf

from fer_tf import models
from fer_tf.models import cliquenet

v1 = tf.compat.v1
SPEC = models.get("clique")


def build_graph(**overrides):
    params = {**SPEC.default_hparams(), **overrides}
    images = v1.placeholder(tf.float32, [None, 48, 48, 1])
    logits = SPEC.build(SPEC.normalize(images), 7, True, params)
    return images, logits


def kernels(scope):
    return {v.op.name: v.shape.as_list() for v in v1.global_variables()
            if v.op.name.startswith(scope + "/") and v.op.name.endswith("/weights")}


def source_variables(conv_op):
    """Names of the variables whose values form the conv's (concatenated) filter."""
    filt = conv_op.inputs[1].op
    if filt.type == "Identity" and filt.inputs[0].op.type != "ReadVariableOp":
        filt = filt.inputs[0].op         # tf.concat of a single kernel is an Identity
    parts = filt.inputs[:-1] if filt.type == "ConcatV2" else [filt.outputs[0]]
    names = []
    for t in parts:
        op = t.op
        while op.type in ("ReadVariableOp", "Identity"):
            op = op.inputs[0].op
        names.append(op.name)
    return names


@pytest.mark.parametrize("block, in_channels", [(1, 64), (2, 180), (3, 180)])
def test_each_block_has_5_plus_20_kernels(block, in_channels):
    with tf.Graph().as_default():
        build_graph()
        found = kernels(f"block{block}")
        inputs = {n: s for n, s in found.items() if "input_to_node" in n}
        pairs = {n: s for n, s in found.items() if "_to_node" in n and "input" not in n}
        assert len(found) == 25 and len(inputs) == 5 and len(pairs) == 20
        assert all(s == [3, 3, in_channels, 36] for s in inputs.values())
        assert all(s == [3, 3, 36, 36] for s in pairs.values())


def test_stage_two_creates_no_kernel_and_reuses_stage_one_variables():
    with tf.Graph().as_default():
        x = v1.placeholder(tf.float32, [None, 12, 12, 64])
        with v1.variable_scope("block"):
            w0, w = cliquenet.block_kernels(64, 36, 5)
            nodes = cliquenet.stage_one(x, w0, w, 1.0, True)
            before = set(v.op.name for v in v1.global_variables())
            cliquenet.stage_two(nodes, w, 1.0, True)
        added = set(v.op.name for v in v1.global_variables()) - before
        # Stage II's only new variables are its own batch-norm parameters and statistics.
        assert added and all("/stage2_bn" in name for name in added)
        assert not [n for n in added if n.endswith("weights")]
        graph = v1.get_default_graph()
        for i in range(5):
            stage1 = source_variables(graph.get_operation_by_name(f"block/stage1_conv{i}"))
            stage2 = source_variables(graph.get_operation_by_name(f"block/stage2_conv{i}"))
            assert stage1 == [f"block/input_to_node{i}/weights"] + [
                f"block/node{j}_to_node{i}/weights" for j in range(i)]
            assert stage2 == [f"block/node{j}_to_node{i}/weights" for j in range(5) if j != i]
            # Every j->i kernel used in stage I is the very same variable stage II uses.
            assert set(stage1[1:]) <= set(stage2)


def test_gradients_reach_every_kernel():
    with tf.Graph().as_default():
        images, logits = build_graph(keep_prob=1.0)
        loss = tf.reduce_mean(tf.square(logits))
        trainable = v1.trainable_variables()
        grads = tf.gradients(loss, trainable)
        assert all(g is not None for g in grads)
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            values = sess.run(grads, {images: np.random.RandomState(0).uniform(0, 255, (4, 48, 48, 1))})
        weights = [(v.op.name, g) for v, g in zip(trainable, values) if v.op.name.endswith("weights")]
        assert len(weights) >= 3 * 25
        assert all(np.abs(g).sum() > 0 for _, g in weights), [n for n, g in weights if not np.abs(g).sum()]


def test_fused_feature_is_964_wide_and_attention_switches_off():
    with tf.Graph().as_default():
        build_graph()
        fused = v1.get_default_graph().get_tensor_by_name("fused_features:0")
        assert fused.shape.as_list() == [None, 964]
        assert any("attention_fc1" in v.op.name for v in v1.global_variables())
    with tf.Graph().as_default():
        _, logits = build_graph(attention=False)
        assert not any("attention" in v.op.name for v in v1.global_variables())
        assert logits.shape.as_list() == [None, 7]


def test_variants_from_flags():
    with tf.Graph().as_default():
        build_graph(clique_k=12, clique_nodes=3, clique_blocks=2)
        fused = v1.get_default_graph().get_tensor_by_name("fused_features:0")
        assert fused.shape.as_list() == [None, (64 + 36) + (36 + 36)]
        assert len(kernels("block1")) == 3 + 6
