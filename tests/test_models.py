"""Every registered classifier builds with the right output shape and fits a small set."""
import numpy as np
import pytest
import tensorflow as tf

from conftest import sample_rows
from fer_tf import models
from fer_tf.core.errors import FerTfError
from fer_tf.training import tasks

# Networks built by the shared skeleton (Keras models have no `build`) whose task predicts classes
# (not points).
CLASSIFIERS = [n for n in models.names()
               if models.get(n).build is not None and not tasks.of(models.get(n)).points]


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_builds_logits_of_the_right_shape(name):
    spec = models.get(name)
    with tf.Graph().as_default():
        images = tf.compat.v1.placeholder(tf.float32, [None, *spec.image_size])
        logits = spec.build(spec.normalize(images), 7, True, spec.default_hparams())
        assert logits.shape.as_list() == [None, 7]
        assert tf.compat.v1.trainable_variables()


def test_unknown_model_lists_known_ones():
    with pytest.raises(FerTfError, match="unknown model 'resnet9000'; known models: .*lenet7"):
        models.get("resnet9000")


def train_accuracy_after(spec, images, labels, steps, lr=1e-3):
    """Plain graph-mode training (no augmentation) on a fixed small set; returns train accuracy."""
    params = {**spec.default_hparams(), "keep_prob": 1.0}
    with tf.Graph().as_default():
        tf.compat.v1.set_random_seed(0)
        x = tf.constant(images)
        y = tf.constant(labels)
        logits = spec.build(spec.normalize(x), 7, True, params)
        loss = tf.compat.v1.losses.sparse_softmax_cross_entropy(y, logits)
        with tf.control_dependencies(tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)):
            train = tf.compat.v1.train.AdamOptimizer(lr).minimize(loss)
        if spec.pretrained:          # a model that starts from pretrained weights starts there
            import tempfile
            prefix = spec.pretrained(tempfile.mkdtemp(prefix="fer_tf_pretrained_"))
            names = tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
            tf.compat.v1.train.init_from_checkpoint(prefix, {name: name for name in names})
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            # Training-mode forward pass (batch statistics): what "fits the set" means here.
            predicted = tf.argmax(logits, 1)
            for step in range(steps):
                sess.run(train)
                if step % 10 == 9 and np.mean(sess.run(predicted) == labels) >= 0.9:
                    break
            return float(np.mean(sess.run(predicted) == labels))


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_fits_32_faces(name):
    import cv2
    spec = models.get(name)
    rows = sample_rows()[:32]
    side = spec.image_size[0]
    images = np.array([cv2.resize(np.array(r[1].split(), np.float32).reshape(48, 48), (side, side))
                       .reshape(side, side, 1) for r in rows])
    labels = np.array([int(r[0]) for r in rows], np.int32)
    assert train_accuracy_after(spec, images, labels, steps=150) >= 0.9
