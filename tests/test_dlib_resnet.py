"""dlib's face-recognition ResNet rebuilt in TensorFlow: the reader of dlib's file, equality with
dlib's own descriptors, and training that starts from those weights."""
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import DATA
from fer_tf.core.errors import FerTfError

CHIPS = os.path.join(DATA, "dlib_chips.jpg")    # tools/dlib_chips.py: 32 GENKI-4K chips, 150 px


def chips():
    mosaic = np.array(Image.open(CHIPS).convert("RGB"))
    tiles = [mosaic[r:r + 150, c:c + 150] for r in range(0, mosaic.shape[0], 150)
             for c in range(0, mosaic.shape[1], 150)]
    return np.stack([t for t in tiles if t.any()])


@pytest.fixture(scope="module")
def network():
    from fer_tf.models import dlib_resnet_weights
    return dlib_resnet_weights.read()


def test_reader_reads_the_whole_file_as_dlibs_resnet(network):
    kinds = [layer.kind for layer in network.layers]
    assert {k: kinds.count(k) for k in set(kinds)} == {
        "con": 29, "affine": 29, "relu": 29, "add_prev": 14, "avg_pool": 5, "max_pool": 1, "fc": 1}
    assert network.size == 150
    np.testing.assert_allclose(network.means, (122.782, 117.001, 104.298), atol=1e-4)
    assert network.layers[0].arrays["kernel"].shape == (7, 7, 3, 32)
    assert network.layers[-1].arrays["kernel"].shape == (256, 128)
    params = sum(a.size for layer in network.layers for a in layer.arrays.values())
    assert params == 5_614_592          # dlib-models' published count


def test_rebuild_equals_dlibs_descriptors_in_float32():
    import dlib
    import face_recognition_models
    from fer_tf.models import dlib_resnet, dlib_resnet_weights
    faces = chips()
    assert len(faces) >= 30
    reference = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())
    expected = np.array([reference.compute_face_descriptor(np.ascontiguousarray(f)) for f in faces])
    model = dlib_resnet.embedding_model()
    for name, arrays in dlib_resnet.folded_weights(dlib_resnet_weights.read()).items():
        model.get_layer(name).set_weights(arrays)
    got = model.predict(faces.astype(np.float32), verbose=0)
    assert got.dtype == np.float32
    # Max |difference|, not a cosine: BGR input or a 127.5 mean score cosines of 0.978-0.9995.
    assert np.abs(got - expected).max() <= 1e-5


def test_a_wrong_layer_is_refused_naming_the_first_difference(network):
    from fer_tf.models import dlib_resnet
    layers = list(network.layers)
    network.layers = layers[:5] + layers[6:]         # one affine missing after the 2nd conv
    try:
        with pytest.raises(FerTfError, match=r"layer 6 is relu .* the network needs affine"):
            dlib_resnet.folded_weights(network)
    finally:
        network.layers = layers


def test_a_truncated_or_foreign_file_is_one_line(tmp_path, network):
    from fer_tf.models import dlib_resnet_weights
    from fer_tf.models.dlib_resnet_weights import default_path
    data = open(default_path(), "rb").read()
    cut = tmp_path / "cut.dat"
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(FerTfError, match=r"cut\.dat: not dlib's face-recognition ResNet: .*(ends early|past the end)"):
        dlib_resnet_weights.read(str(cut))
    other = tmp_path / "other.dat"
    shutil.copy(os.path.join(os.path.dirname(default_path()), "shape_predictor_5_face_landmarks.dat"), other)
    with pytest.raises(FerTfError, match=r"other\.dat: not dlib's face-recognition ResNet"):
        dlib_resnet_weights.read(str(other))


def test_training_starts_from_dlibs_weights(sample_records, tmp_path):
    import tensorflow as tf
    from fer_tf.models import dlib_resnet, dlib_resnet_weights
    from fer_tf.training import run
    lines = []
    run.train("dlib_resnet", sample_records, str(tmp_path / "run"), max_steps=1,
              overrides={"batch_size": 8, "learning_rate": 1e-7}, log=lines.append)
    assert any("58 of 60 tensors restored; new: logits/bias, logits/kernel" in l for l in lines)
    reader = tf.train.load_checkpoint(str(tmp_path / "run"))
    folded = dlib_resnet.folded_weights(dlib_resnet_weights.read())
    for name in ("conv1", "stage5_block1_conv2"):
        np.testing.assert_allclose(reader.get_tensor(f"{name}/kernel"), folded[name][0], atol=1e-5)


@pytest.mark.parametrize("mode, trained", [
    ("features", {"fer_fc1", "probabilities"}),
    ("finetune", {"fer_fc1", "probabilities", "stage5_block1_conv1", "stage5_block1_conv2"})])
def test_the_keras_route_trains_what_the_seed_trained(mode, trained):
    from fer_tf.models import dlib_resnet, dlib_resnet_weights
    from fer_tf.training.tasks import Options
    params = {**dlib_resnet.KERAS_SPEC.default_hparams(), "dlib_mode": mode}
    model = dlib_resnet.keras_classifier(7, params)
    assert {layer.name for layer in model.layers if layer.trainable and layer.weights} == trained
    lines = []
    dlib_resnet.load_keras_weights(model, Options(log=lines.append))
    folded = dlib_resnet.folded_weights(dlib_resnet_weights.read())
    for name in ("conv1", "stage3_block2_conv1", "stage5_block1_conv2"):
        np.testing.assert_array_equal(model.get_layer(name).get_weights()[0], folded[name][0])
    assert "into 29 layers" in lines[0]
