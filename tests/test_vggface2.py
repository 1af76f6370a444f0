"""VGGFace2 ResNet50: keras-vggface layer names and shapes, loading a weights file by name,
refusing a wrong one, the two freezing modes, and model_to_estimator training and export."""
import h5py
import numpy as np
import pytest
import tensorflow as tf

from conftest import FACE_PNG, SAMPLE_CSV
from fer_tf.data import convert
from fer_tf.training import run
from fer_tf.serving import exported
from fer_tf.models import vggface2_weights
from fer_tf.core.errors import FerTfError
from fer_tf.models import vggface2

TINY = 0.125      # every layer thinned 8x: same names and layout, a small file


def test_full_size_layout_matches_keras_vggface():
    model = vggface2.build_keras_model(7)
    layers = {l.name: l for l in model.layers}
    assert layers["conv1/7x7_s2"].kernel.shape == (7, 7, 3, 64)
    assert layers["conv2_1_1x1_proj"].kernel.shape == (1, 1, 64, 256)
    assert layers["conv5_3_1x1_increase"].kernel.shape == (1, 1, 512, 2048)
    assert [w.name.split("/")[-1] for w in layers["conv4_6_3x3/bn"].weights] == [
        "gamma:0", "beta:0", "moving_mean:0", "moving_variance:0"]
    assert {f"activation_{i}" for i in range(1, 50)} <= set(layers)
    assert "activation_50" not in layers
    base = set(vggface2.base_layer_names(model))
    params = sum(int(np.prod(w.shape)) for l in model.layers if l.name in base for w in l.weights)
    assert params == 23_561_152            # keras-vggface RESNET50(include_top=False)
    assert model.output_names == ["probabilities"] and model.input_names == ["image"]


@pytest.mark.parametrize("mode, trainable_prefixes", [
    ("features", ("fer_fc1", "probabilities")),
    ("finetune", ("conv5_3_", "fer_fc1", "probabilities")),
])
def test_freezing_modes(mode, trainable_prefixes):
    model = vggface2.build_keras_model(7, mode, width=TINY)
    trainable = {w.name.split("/")[0] for w in model.trainable_weights}
    assert trainable and all(n.startswith(trainable_prefixes) for n in trainable)
    if mode == "finetune":
        assert "conv5_3_1x1_reduce" in trainable and "conv5_2_1x1_increase" not in trainable


def tiny_weights_file(path, width=TINY, seed=0):
    tf.keras.utils.set_random_seed(seed)
    source = vggface2.build_keras_model(7, width=width)
    vggface2_weights.save_layout(source, path)
    return source


def test_weights_load_by_name(tmp_path):
    path = str(tmp_path / "rcmalli_vggface_tf_notop_resnet50.h5")
    source = tiny_weights_file(path)
    with h5py.File(path) as f:          # the keras weights-only layout
        assert b"conv1/7x7_s2" in list(f.attrs["layer_names"])
        assert "conv1/7x7_s2/kernel:0" in [n.decode() for n in f["conv1/7x7_s2"].attrs["weight_names"]]
    tf.keras.utils.set_random_seed(1)
    target = vggface2.build_keras_model(7, width=TINY)
    assert vggface2_weights.load(target, path) == 106       # 53 conv + 53 batch-norm layers
    for a, b in zip(source.layers, target.layers):
        if a.name in vggface2.base_layer_names(source):
            for wa, wb in zip(a.get_weights(), b.get_weights()):
                np.testing.assert_array_equal(wa, wb)


def test_wrong_weights_are_refused_with_differences(tmp_path):
    other = str(tmp_path / "other.h5")
    tiny_weights_file(other, width=0.25)
    model = vggface2.build_keras_model(7, width=TINY)
    with pytest.raises(FerTfError) as err:
        vggface2_weights.load(model, other)
    assert "conv1/7x7_s2/kernel has shape (7, 7, 3, 16), model needs (7, 7, 3, 8)" in str(err.value)
    assert "and " in str(err.value) and "more" in str(err.value)
    missing = str(tmp_path / "missing.h5")
    tiny_weights_file(missing)
    with h5py.File(missing, "a") as f:
        f.attrs["layer_names"] = np.array([n for n in f.attrs["layer_names"] if n != b"conv5_3_3x3"])
    with pytest.raises(FerTfError, match="1 difference\\(s\\)\\): layer conv5_3_3x3 missing"):
        vggface2_weights.load(model, missing)
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(FerTfError, match="not a readable HDF5"):
        vggface2_weights.load(model, str(tmp_path / "junk.h5"))
    with pytest.raises(FerTfError, match="no such file"):
        vggface2_weights.load(model, str(tmp_path / "absent.h5"))


@pytest.fixture(scope="module")
def records_224(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("r224") / "fer2013_224")
    convert.convert_fer2013(SAMPLE_CSV, out, size=224, channels=1, progress=False)
    return out


def test_random_init_needs_explicit_flag(records_224, tmp_path):
    with pytest.raises(FerTfError, match="--vggface2-weights PATH is required"):
        run.train("vggface2", records_224, str(tmp_path / "m"), max_steps=1,
                  overrides={"width": TINY}, log=lambda *_: None)


def test_estimator_trains_freezes_and_exports(records_224, tmp_path):
    weights = str(tmp_path / "w.h5")
    source = tiny_weights_file(weights)
    model_dir = str(tmp_path / "vgg")
    metrics, export = run.train("vggface2", records_224, model_dir, max_steps=3,
                                overrides={"width": TINY, "batch_size": 4, "learning_rate": 1e-2,
                                           "class_weights": "balanced"},
                                vggface2_weights=weights, log=lambda *_: None)
    assert metrics["global_step"] == 3 and "recall/disgust" in metrics and "accuracy" in metrics
    ckpt = tf.train.load_checkpoint(tf.train.latest_checkpoint(model_dir))
    layers = {l.name: l for l in source.layers}
    for name in ("conv1/7x7_s2", "conv4_6_1x1_increase", "conv5_2_3x3"):      # frozen
        np.testing.assert_array_equal(ckpt.get_tensor(f"{name}/kernel"), layers[name].get_weights()[0])
    np.testing.assert_array_equal(ckpt.get_tensor("conv5_1_3x3/bn/moving_mean"),
                                  layers["conv5_1_3x3/bn"].get_weights()[2])
    for name in ("conv5_3_3x3", "conv5_3_1x1_increase"):                        # trained
        assert not np.array_equal(ckpt.get_tensor(f"{name}/kernel"), layers[name].get_weights()[0])
    model = exported.ExportedModel(export)
    assert model.image_size == (224, 224, 3) and model.meta.model == "vggface2"
    probs = model.predict([open(FACE_PNG, "rb").read()])
    assert probs.shape == (1, 7) and abs(probs.sum() - 1) < 1e-5


def test_bottleneck_cache_head_and_assembled_export(records_224, tmp_path):
    from fer_tf.training import bottleneck
    from fer_tf.serving import export
    from fer_tf.data import records
    weights = str(tmp_path / "w.h5")
    tiny_weights_file(weights)
    cache = str(tmp_path / "cache")
    manifest = bottleneck.cache_features(records_224, cache, weights, width=TINY, progress=False,
                                         log=lambda *_: None)
    assert manifest.kind == "features" and manifest.feature_dim == 256
    assert {s: v.count for s, v in manifest.splits.items()} == {"train": 210, "eval": 49, "test": 49}
    assert records.read_manifest(records_224).splits["train"].per_class == manifest.splits["train"].per_class
    with pytest.raises(FerTfError, match="needs image records, this folder holds features"):
        run.prepare("vggface2", cache)
    head_dir = str(tmp_path / "head")
    metrics, none = run.train("vggface2_head", cache, head_dir, max_steps=20,
                              overrides={"batch_size": 32, "width": TINY}, log=lambda *_: None)
    assert none is None and metrics["global_step"] == 20 and "recall/happy" in metrics
    out = str(tmp_path / "assembled")
    export.assemble(head_dir, out, weights, log=lambda *_: None)
    model = exported.ExportedModel(out)
    assert model.meta.model == "vggface2" and model.image_size == (224, 224, 3)
    # The assembled SavedModel = base from the weights file + head from the head's checkpoint.
    reference = vggface2.build_keras_model(7, "features", width=TINY)
    vggface2_weights.load(reference, weights)
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(head_dir))
    for name in ("fer_fc1", "probabilities"):
        reference.get_layer(name).set_weights([reader.get_tensor(f"{name}/kernel"),
                                               reader.get_tensor(f"{name}/bias")])
    png = open(FACE_PNG, "rb").read()
    from fer_tf.data import preprocess
    image = preprocess.decode_image(tf.constant(png), 224, 224, 3)[None]
    np.testing.assert_allclose(model.predict([png]), reference(image, training=False).numpy(), atol=1e-4)
