"""Rebuilt exports from known weights, without training: a tiny network's variables are filled
with random values (batch-norm statistics included), written as an export, and every rebuild —
float16 and int8 storage, test-time views, prior correction, ensembles of members with other
sizes and channels, the smile output, the landmark signatures — is compared with the model_fn
run directly on the same weights. Seconds, not minutes: the selection `make mutation` runs
against each mutant of serving/rebuild.py and serving/export.py."""
import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from fer_tf import models
from fer_tf.core.errors import FerTfError
from fer_tf.core import export_format
from fer_tf.core.export_format import ExportMeta
from fer_tf.core.labels import FER7, FERPLUS8, LANDMARKS68
from fer_tf.data import records
from fer_tf.faces import crops
from fer_tf.serving import export, exported, rebuild
from fer_tf.training import model_fn, tasks
from fer_tf.training.config import RunMeta, RunSpec

v1 = tf.compat.v1
PREDICT = tf.estimator.ModeKeys.PREDICT
TINY_VGG = {"widths": [4, 4, 4, 4], "fc_units": [8], "crop_size": 40, "tta": "none"}
# TensorFlow's luma weights (ITU-R BT.601), as tf.image.rgb_to_grayscale applies them.
LUMA = np.array([0.2989, 0.5870, 0.1140])


class Weights:
    """A checkpoint reader over a dict of arrays."""

    def __init__(self, values):
        self.values = values

    def has_tensor(self, name):
        return name in self.values

    def get_tensor(self, name):
        return self.values[name]


def vgg_meta(image_size=(48, 48, 1), label_set=FER7, **overrides):
    hparams = models.get("vgg").resolve_hparams({**TINY_VGG, **overrides})
    return ExportMeta(model="vgg", image_size=tuple(image_size), hparams=hparams,
                      label_set=label_set.to_json(), input="image_bytes")


def landmark_meta():
    hparams = models.get("landmarks").resolve_hparams({"width": 0.125, "dense_units": 8})
    return ExportMeta(model="landmarks", image_size=(128, 128, 3), hparams=hparams,
                      label_set=LANDMARKS68.to_json(), input="image_bytes")


def random_weights(meta, seed):
    """Every variable of the single model's graph, random: a weight left unloaded, loaded into
    another variable or stored with the wrong scale changes the answers."""
    with tf.Graph().as_default():
        rebuild.kind_of(meta).graph(meta, "float32")
        shapes = {v.op.name: v.shape.as_list() for v in v1.global_variables()}
    rng = np.random.default_rng(seed)
    values = {}
    for name, shape in shapes.items():
        if name.endswith("moving_variance"):
            value = rng.uniform(0.5, 2.0, shape)
        elif name.endswith("gamma"):
            value = rng.uniform(0.5, 1.5, shape)
        elif len(shape) >= 2:
            value = rng.normal(0, np.sqrt(2.0 / np.prod(shape[:-1])), shape)
        else:
            value = rng.normal(0, 0.3, shape)
        values[name] = value.astype(np.float32)
    return values


def reference(meta, weights, faces):
    """(probabilities, smile or None) of the model_fn itself in PREDICT mode with `weights`, on
    float faces at the model's own size: no rebuild involved."""
    run = RunSpec.for_export(meta)
    with tf.Graph().as_default(), v1.Session() as sess:
        out = model_fn.classifier_model_fn(run)({"image": tf.constant(faces, tf.float32)}, None,
                                                PREDICT, meta.hparams).predictions
        for var in v1.global_variables():
            var.load(weights[var.op.name], sess)
        return sess.run(out["probabilities"]), (sess.run(out["smile"]) if "smile" in out else None)


def write_export(meta, weights, path):
    rebuild.write(meta, {"": Weights(weights)}, str(path))
    return str(path)


def foreign_export(meta, weights, path):
    """An export whose metadata names a model fer-tf does not know (as a Keras model's is kept
    as it is): written as `meta`'s, then marked as someone else's."""
    write_export(meta, weights, path)
    export_format.write_assets(str(path / "assets.extra"), meta.replace(model="someone_elses"))
    return str(path)


def dequantized(kernel):
    """Per output channel: scale = the channel's largest magnitude / 127, values rounded."""
    scale = np.abs(kernel).reshape(-1, kernel.shape[-1]).max(axis=0) / 127.0
    return np.round(kernel / scale) * scale


def as_float16(value):
    return value.astype(np.float16).astype(np.float32)


FACES = np.random.default_rng(7).integers(0, 256, (6, 48, 48, 1)).astype(np.uint8)
COLOUR = np.random.default_rng(8).integers(0, 256, (6, 48, 48, 3)).astype(np.uint8)


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """(meta, weights, export path) of a tiny VGG on grey 48 px faces, with a smile head."""
    meta = vgg_meta(smile_head=True)
    weights = random_weights(meta, 0)
    return meta, weights, write_export(meta, weights, tmp_path_factory.mktemp("plain") / "e")


@pytest.fixture(scope="module")
def colour(tmp_path_factory):
    """A tiny VGG on colour 40 px faces, with a smile head."""
    meta = vgg_meta((40, 40, 3), smile_head=True, crop_size=0)
    weights = random_weights(meta, 1)
    return meta, weights, write_export(meta, weights, tmp_path_factory.mktemp("colour") / "e")


@pytest.fixture(scope="module")
def sample_manifest(tmp_path_factory):
    """A record folder's manifest alone (what --prior-data reads): train counts 1, 2, ... 7."""
    folder = tmp_path_factory.mktemp("records") / "fer7_counts"
    folder.mkdir()
    records.write_manifest(str(folder), records.Manifest(
        dataset="fer2013", label_set=FER7.to_json(), source={}, options={},
        image=records.Manifest.image_info(48, 1),
        splits={"train": records.Split(count=28, per_class=list(range(1, 8)), shards=[])}))
    return str(folder)


def signature(path, name, **inputs):
    # Without Grappler's rewrite: a third faster to load and call once, the same arithmetic.
    return exported.Signatures(path, optimize=False)(name, **inputs)


# -- metadata, arithmetic and kinds, no export (first: most mutants fail here within a second)

def test_quantize_maps_each_channels_largest_magnitude_to_127():
    kernel = np.array([[1.0, -0.5, 0.0], [-2.54, 0.25, 0.0]], np.float32)
    values, scale = rebuild.quantize(kernel)
    assert values.dtype == np.int8 and scale.dtype == np.float32
    np.testing.assert_allclose(scale, [0.02, 0.5 / 127, 1.0], rtol=1e-6)
    np.testing.assert_array_equal(values, [[50, -127, 0], [-127, 64, 0]])


def test_test_time_views_in_the_metadata():
    single = vgg_meta()
    assert rebuild.with_tta(single, None) is single
    assert rebuild.with_tta(single, "flip").hparams["tta"] == "flip"
    assert single.hparams["tta"] == "none"                       # the original is untouched
    with pytest.raises(FerTfError, match=r"^--tta ten_crop: vgg was not trained on crops "
                                         r"\(crop_size 0\); use --tta flip$"):
        rebuild.with_tta(vgg_meta(crop_size=0), "ten_crop")
    assert rebuild.with_tta(single, "ten_crop").hparams["tta"] == "ten_crop"
    with pytest.raises(FerTfError, match="vgg was not trained on crops"):
        # --tta ten_crop from the command line: an equal string, not the literal itself.
        rebuild.with_tta(vgg_meta(crop_size=0), "".join(list("ten_crop")))
    pair = rebuild.ensemble_meta([single.replace(path="a"), vgg_meta(crop_size=0).replace(path="b")])
    assert [m.hparams["tta"] for m in rebuild.with_tta(pair, "flip").members] == ["flip", "flip"]
    with pytest.raises(FerTfError, match="vgg was not trained on crops"):
        rebuild.with_tta(pair, "ten_crop")


def test_prior_correction_keeps_a_zero_probability_the_smallest():
    meta = vgg_meta().replace(prior_correction={"tau": 1.0, "train_prior": [0.5, 0.25, 0.25]})
    out = rebuild.corrected(meta, tf.constant([[0.0, 0.5, 0.5], [0.5, 0.25, 0.25]])).numpy()
    assert np.isfinite(out).all() and out[0, 0] < 1e-20
    np.testing.assert_allclose(out[0, 1:], [0.5, 0.5], rtol=1e-6)
    np.testing.assert_allclose(out[1], [1 / 3, 1 / 3, 1 / 3], rtol=1e-6)
    np.testing.assert_allclose(rebuild.prior_bias(2.0, [1, 3]), [2 * np.log(4), 2 * np.log(4 / 3)])
    assert rebuild.corrected(vgg_meta(), "unchanged") == "unchanged"


def test_prior_correction_in_the_metadata_and_its_refusals(sample_manifest):
    meta = vgg_meta()
    corrected = rebuild.with_prior_correction(meta, 0.25, [2, 6], "x train split")
    assert corrected.prior_correction == {"tau": 0.25, "train_prior": [0.25, 0.75],
                                          "source": "x train split"}
    assert type(corrected.prior_correction["tau"]) is float
    assert rebuild.with_prior_correction(corrected, 0, [2, 6], "x").prior_correction is None
    with pytest.raises(FerTfError, match=r"^--prior-data x: needs a training count > 0 for each "
                                         r"of the 3 classes \(has \[4, 0, 1\]\)$"):
        rebuild.with_prior_correction(meta, 1.0, [4, 0, 1], "x")
    with pytest.raises(FerTfError, match=r"needs a training count > 0 .* \(has \[4, -1, 1\]\)$"):
        rebuild.with_prior_correction(meta, 1.0, [4, -1, 1], "x")
    assert export.with_prior(meta, None) is meta
    with pytest.raises(FerTfError, match=r"^--prior-data .*fer7_counts: label set fer7 is not the "
                                         r"export's ferplus8; give the records it was trained on$"):
        export.with_prior(vgg_meta(label_set=FERPLUS8), (1.0, sample_manifest))


def test_storage_flags():
    assert export.storage_of(False, False) == "float32"
    assert export.storage_of(True, False) == "float16"
    assert export.storage_of(False, True) == "int8"
    with pytest.raises(FerTfError, match=r"^--float16 and --int8: choose one weight storage$"):
        export.storage_of(True, True)


def test_kinds_of_exports():
    assert rebuild.kind_of(vgg_meta()) is rebuild.CLASSIFIER
    assert rebuild.kind_of(landmark_meta()) is rebuild.LANDMARKS
    assert rebuild.kind_of(vgg_meta().replace(model="someone_elses")) is None
    assert rebuild.kind_of(vgg_meta().replace(model="dlib_resnet_keras")) is None
    pair = rebuild.ensemble_meta([vgg_meta().replace(path="a")])
    assert rebuild.kind_of(pair) is rebuild.CLASSIFIER
    classifier, landmarks = rebuild.KINDS["classifier"], rebuild.KINDS["landmarks"]
    assert (classifier.views, classifier.prior, classifier.ensembles,
            classifier.reduced_precision) == (True, True, True, True)
    assert (landmarks.views, landmarks.prior, landmarks.ensembles,
            landmarks.reduced_precision) == (False, False, False, False)
    assert classifier.client is exported.ExportedModel
    with pytest.raises(dataclasses.FrozenInstanceError):
        classifier.views = False                     # one table, read everywhere: not edited
    assert landmarks.client is exported.LandmarkModel
    with pytest.raises(FerTfError, match="^landmarks: only classifiers on the shared model_fn can "
                                         r"be rebuilt \(not Keras or landmark models\)$"):
        with tf.Graph().as_default():
            rebuild.build_graph(rebuild.ensemble_meta([landmark_meta().replace(
                label_set=FER7.to_json(), path="x")]))


def test_assembly_is_for_runs_on_cached_features(tmp_path):
    assert export.assembler_of(str(tmp_path)) is None                 # no run there
    RunMeta(model="someone_elses", label_set="fer7", image_size=(48, 48, 1)).write(str(tmp_path))
    assert export.assembler_of(str(tmp_path)) is None
    with pytest.raises(FerTfError, match=r"^--model-dir .*: not a run of a head on cached "
                                         r"features; export it with `fer-tf export --model-dir` "
                                         r"alone$"):
        export.assemble(str(tmp_path), str(tmp_path / "out"))
    head = tmp_path / "head"
    head.mkdir()
    RunMeta(model="vggface2_head", label_set="fer7", image_size=(1, 1, 1)).write(str(head))
    assert export.assembler_of(str(head)) is tasks.of(models.get("vggface2_head")).assemble
    assert export.assembler_of(str(head)) is not None


# -- the rebuilt graph against the model_fn ---------------------------------------------------

def test_a_rebuilt_export_answers_as_the_model_fn_with_its_weights(plain):
    meta, weights, path = plain
    probabilities, smile = reference(meta, weights, FACES)
    out = signature(path, "faces", faces=FACES)
    np.testing.assert_allclose(out["probabilities"], probabilities, atol=1e-5)
    np.testing.assert_allclose(out["smile"], smile, atol=1e-5)
    assert (out["classes"] == probabilities.argmax(1)).all()
    assert [c.decode() for c in out["class_names"]] == [FER7.classes[k]
                                                       for k in probabilities.argmax(1)]
    assert len(set(probabilities.argmax(1))) > 1       # random weights, yet not one answer
    # The bytes signature decodes PNGs to the same faces.
    encoded = np.array([records.encode_png(f) for f in FACES], dtype=object)
    from_bytes = signature(path, "serving_default", image_bytes=encoded)
    np.testing.assert_allclose(from_bytes["probabilities"], probabilities, atol=1e-5)
    np.testing.assert_allclose(from_bytes["smile"], smile, atol=1e-5)
    assert (from_bytes["classes"] == out["classes"]).all()
    # fer-tf's assets beside it: the metadata as written, the class names one per line.
    with open(os.path.join(path, "assets.extra", "fer_tf.json")) as f:
        assert json.load(f) == meta.to_json()
    with open(os.path.join(path, "assets.extra", "labels.txt")) as f:
        assert f.read() == "angry\ndisgust\nfear\nhappy\nsad\nsurprise\nneutral\n"


def test_an_ensemble_averages_members_of_other_sizes_and_channels(plain, colour, tmp_path):
    (grey_meta, grey_w, grey), (colour_meta, colour_w, coloured) = plain, colour
    out_path = export.ensemble([grey, coloured], str(tmp_path / "e"), weights=[3.0, 1.0])
    meta = exported.read_meta(out_path)
    assert meta.model == "ensemble" and meta.image_size == (48, 48, 3)
    assert [(m.model, m.image_size, m.weight, m.source) for m in meta.members] == [
        ("vgg", (48, 48, 1), 3.0, "e"), ("vgg", (40, 40, 3), 1.0, "e")]
    assert meta.has_smile_head
    as_grey = (COLOUR @ LUMA)[..., None]
    as_40 = tf.image.resize(COLOUR.astype(np.float32), [40, 40], antialias=True).numpy()
    p_grey, smile_grey = reference(grey_meta, grey_w, as_grey)
    p_colour, smile_colour = reference(colour_meta, colour_w, as_40)
    out = signature(out_path, "faces", faces=COLOUR)
    np.testing.assert_allclose(out["probabilities"], (3 * p_grey + p_colour) / 4, atol=1e-4)
    np.testing.assert_allclose(out["smile"], (smile_grey + smile_colour) / 2, atol=1e-4)
    # A grey face given to a colour member is the grey value in all three channels.
    with tf.Graph().as_default(), v1.Session() as sess:
        with v1.variable_scope("", reuse=v1.AUTO_REUSE):
            p, smile = rebuild.probabilities_from_faces(colour_meta, tf.constant(
                np.repeat(FACES[:, 4:44, 4:44], 1, axis=-1), tf.float32))
        for var in v1.global_variables():
            var.load(colour_w[var.op.name], sess)
        got = sess.run(p)
    np.testing.assert_allclose(got, reference(colour_meta, colour_w,
                                              np.repeat(FACES[:, 4:44, 4:44], 3, axis=-1))[0],
                               atol=1e-5)


def test_float16_storage_is_the_weights_rounded_once(plain, tmp_path):
    meta, weights, path = plain
    half = export.export(path, str(tmp_path / "f16"), float16=True)
    full = export.export(path, str(tmp_path / "f32"))
    dtypes = rebuild.weight_source(half).get_variable_to_dtype_map()
    assert set(dtypes) == set(weights) and set(dtypes.values()) == {tf.float16}
    expected, smile = reference(meta, {k: as_float16(v) for k, v in weights.items()}, FACES)
    out = signature(half, "faces", faces=FACES)
    np.testing.assert_allclose(out["probabilities"], expected, atol=1e-5)
    np.testing.assert_allclose(out["smile"], smile, atol=1e-5)
    assert not np.allclose(expected, reference(meta, weights, FACES)[0], atol=1e-5)
    assert not float16_or_int8_casts(half)
    # Sizes: the variables/ folder's files, and every file of the export (a tiny network's
    # checkpoint index outweighs its weights, so only the order is asserted here).
    folder = os.path.join(full, "variables")
    assert export.weights_size(full) == sum(os.path.getsize(os.path.join(folder, name))
                                            for name in os.listdir(folder))
    assert export.weights_size(half) < export.weights_size(full)
    assert export.total_size(full) == sum(os.path.getsize(os.path.join(root, name))
                                          for root, _, names in os.walk(full) for name in names)
    assert export.total_size(full) > export.weights_size(full) > 0


def float16_or_int8_casts(path):
    """Casts of stored weights in the serving function: none when the weights are converted
    once, at load, into the float32 copies every call reads."""
    graph = tf.saved_model.load(path).signatures["serving_default"].graph
    return [op for op in graph.get_operations()
            if op.type == "Cast" and op.inputs[0].dtype in (tf.float16, tf.int8)]


def test_int8_storage_is_a_scale_per_output_channel(plain, tmp_path):
    meta, weights, path = plain
    small = export.export(path, str(tmp_path / "i8"), int8=True)
    reader = rebuild.weight_source(small)
    dtypes = reader.get_variable_to_dtype_map()
    for name, value in weights.items():
        if value.ndim >= 2:
            assert dtypes[name] == tf.int8 and dtypes[name + "_scale"] == tf.float32
            assert reader.get_tensor(name + "_scale").shape == (value.shape[-1],)
            assert np.abs(reader.get_tensor(name)).max() == 127
        else:
            assert dtypes[name] == tf.float16
    assert len(dtypes) == len(weights) + sum(v.ndim >= 2 for v in weights.values())
    stored = {k: dequantized(v) if v.ndim >= 2 else as_float16(v) for k, v in weights.items()}
    expected, smile = reference(meta, stored, FACES)
    out = signature(small, "faces", faces=FACES)
    np.testing.assert_allclose(out["probabilities"], expected, atol=1e-5)
    np.testing.assert_allclose(out["smile"], smile, atol=1e-5)
    assert not float16_or_int8_casts(small)
    # Read back as float (int8 times its scale): float32 from it answers the same, int8 from it
    # stores the same integers.
    again = export.export(small, str(tmp_path / "f32"))
    np.testing.assert_allclose(signature(again, "faces", faces=FACES)["probabilities"], expected,
                               atol=1e-5)
    twice = rebuild.weight_source(export.export(small, str(tmp_path / "i8_again"), int8=True))
    np.testing.assert_array_equal(twice.get_tensor("fc1/kernel"), reader.get_tensor("fc1/kernel"))
    np.testing.assert_array_equal(twice.get_tensor("fc1/kernel_scale"),
                                  reader.get_tensor("fc1/kernel_scale"))


def test_flip_views_are_the_mean_of_the_face_and_its_mirror(plain, tmp_path):
    meta, weights, path = plain
    flipped = export.export(path, str(tmp_path / "flip"), tta="flip")
    assert exported.read_meta(flipped).tta == "flip"
    both = np.concatenate([FACES, FACES[:, :, ::-1]])
    halves = signature(path, "faces", faces=both)["probabilities"]
    np.testing.assert_allclose(signature(flipped, "faces", faces=FACES)["probabilities"],
                               (halves[:6] + halves[6:]) / 2, atol=1e-5)


def test_ten_crop_views_are_the_mean_of_the_four_corners_the_centre_and_their_mirrors(plain,
                                                                                     tmp_path):
    path = plain[2]
    ten = export.export(path, str(tmp_path / "ten"), tta="ten_crop")
    views = []
    for face in FACES:
        for y, x in [(0, 0), (0, 8), (8, 0), (8, 8), (4, 4)]:
            crop = face[y:y + 40, x:x + 40]
            for view in (crop, crop[:, ::-1]):
                # The plain export reads the centre 40x40 of a 48x48 face: put the view there.
                canvas = np.zeros((48, 48, 1), np.uint8)
                canvas[4:44, 4:44] = view
                views.append(canvas)
    by_hand = signature(path, "faces", faces=np.stack(views))["probabilities"]
    np.testing.assert_allclose(signature(ten, "faces", faces=FACES)["probabilities"],
                               by_hand.reshape(6, 10, 7).mean(axis=1), atol=1e-5)


# -- prior correction -------------------------------------------------------------------------

def test_prior_correction_divides_by_the_training_prior_to_the_power_tau(plain, sample_manifest,
                                                                          tmp_path):
    meta, weights, path = plain
    corrected = export.export(path, str(tmp_path / "c"), prior=(0.5, sample_manifest))
    prior = np.arange(1, 8) / 28.0
    assert exported.read_meta(corrected).prior_correction == {
        "tau": 0.5, "train_prior": pytest.approx(prior.tolist()), "source": "fer7_counts train split"}
    plain_p = signature(path, "faces", faces=FACES)["probabilities"]
    expected = plain_p / prior ** 0.5
    expected /= expected.sum(axis=1, keepdims=True)
    out = signature(corrected, "faces", faces=FACES)
    np.testing.assert_allclose(out["probabilities"], expected, rtol=1e-4, atol=1e-6)
    assert (out["classes"] == expected.argmax(1)).all()
    # The correction replaces one already there (it is not applied twice); tau 0 removes it.
    again = export.export(corrected, str(tmp_path / "again"), prior=(0.5, sample_manifest))
    np.testing.assert_allclose(signature(again, "faces", faces=FACES)["probabilities"], expected,
                               rtol=1e-4, atol=1e-6)
    removed = export.export(corrected, str(tmp_path / "removed"), prior=(0, sample_manifest))
    assert exported.read_meta(removed).prior_correction is None
    np.testing.assert_allclose(signature(removed, "faces", faces=FACES)["probabilities"], plain_p,
                               atol=1e-6)
    kept = export.export(corrected, str(tmp_path / "kept"))
    assert exported.read_meta(kept).prior_correction["tau"] == 0.5
    # An ensemble corrects its weighted mean, not each member.
    pair = export.ensemble([path, path], str(tmp_path / "pair"), weights=[3.0, 1.0],
                           prior=(0.5, sample_manifest))
    np.testing.assert_allclose(signature(pair, "faces", faces=FACES)["probabilities"], expected,
                               rtol=1e-4, atol=1e-6)


# -- ensembles ---------------------------------------------------------------------------------

def test_an_ensemble_member_without_a_smile_head_adds_no_smile(plain, tmp_path):
    meta, weights, path = plain
    no_smile_meta = vgg_meta()
    no_smile = write_export(no_smile_meta, random_weights(no_smile_meta, 2), tmp_path / "n")
    assert "smile" not in signature(no_smile, "faces", faces=FACES)
    assert not exported.read_meta(no_smile).has_smile_head
    pair = export.ensemble([no_smile, path], str(tmp_path / "pair"))
    assert [m.weight for m in exported.read_meta(pair).members] == [1.0, 1.0]   # by default
    np.testing.assert_allclose(signature(pair, "faces", faces=FACES)["smile"],
                               reference(meta, weights, FACES)[1], atol=1e-5)
    alone = export.ensemble([no_smile], str(tmp_path / "alone"))
    assert "smile" not in signature(alone, "faces", faces=FACES)


def test_an_ensemble_in_an_ensemble_is_taken_apart(plain, colour, tmp_path):
    grey, coloured = plain[2], colour[2]
    inner = export.ensemble([grey, coloured], str(tmp_path / "inner"), weights=[3.0, 1.0])
    outer = export.ensemble([inner, grey], str(tmp_path / "outer"), weights=[2.0, 1.0],
                            float16=True)
    meta = exported.read_meta(outer)
    assert [(m.image_size, m.weight) for m in meta.members] == [
        ((48, 48, 1), 1.5), ((40, 40, 3), 0.5), ((48, 48, 1), 1.0)]
    p_inner = signature(inner, "faces", faces=COLOUR)["probabilities"]
    p_grey = signature(grey, "faces", faces=np.round(COLOUR @ LUMA)[..., None].astype(np.uint8))
    expected = (2 * p_inner + p_grey["probabilities"]) / 3
    np.testing.assert_allclose(signature(outer, "faces", faces=COLOUR)["probabilities"], expected,
                               atol=2e-3)
    assert set(rebuild.weight_source(outer).get_variable_to_dtype_map().values()) == {tf.float16}


def test_ensemble_refusals(plain, sample_manifest, tmp_path):
    meta, _, path = plain
    for weights in ([1.0], [1.0, 1.0, 1.0]):
        with pytest.raises(FerTfError, match=r"^--weights: give one positive weight per member "
                                             r"\(2\)$"):
            export.ensemble([path, path], str(tmp_path / "a"), weights=weights)
    corrected = export.ensemble([path], str(tmp_path / "c"), prior=(1.0, sample_manifest))
    with pytest.raises(FerTfError, match="carries a prior correction; ensemble uncorrected"):
        export.ensemble([corrected, path], str(tmp_path / "b"))
    assert not os.path.exists(tmp_path / "b") and not os.path.exists(tmp_path / "a")
    other = foreign_export(meta, plain[1], tmp_path / "other")
    with pytest.raises(FerTfError):
        export.ensemble([path, other], str(tmp_path / "mixed"))
    assert not os.path.exists(tmp_path / "mixed")
    one = meta.replace(path="one")
    for weights in ([1.0, 0.0], [1.0, -2.0], [1.0], [1.0, 1.0, 1.0]):
        with pytest.raises(FerTfError, match=r"^--weights: give one positive weight per member"):
            rebuild.ensemble_meta([one, one], weights)
    with pytest.raises(FerTfError, match="^one: is an ensemble already; list its members instead$"):
        rebuild.ensemble_meta([rebuild.ensemble_meta([one]).replace(path="one")])
    with pytest.raises(FerTfError, match="^one: carries a prior correction; ensemble the "):
        rebuild.ensemble_meta([rebuild.with_prior_correction(one, 1.0, [1] * 7, "x")])
    with pytest.raises(FerTfError, match=r"^two: label set ferplus8 differs from one's fer7; an "
                                         r"ensemble averages one label set$"):
        rebuild.ensemble_meta([one, vgg_meta(label_set=FERPLUS8).replace(path="two")])
    sourced = rebuild.ensemble_meta([one, meta.replace(path="x/y/", source="origin")], [1, 2])
    assert [(m.source, m.weight, type(m.weight)) for m in sourced.members] == [
        ("one", 1.0, float), ("origin", 2.0, float)]
    assert sourced.label_set == FER7.to_json() and sourced.members[0].label_set is None
    assert [(m.source, m.weight) for m in rebuild.ensemble_meta(
        [meta.replace(path="a/b/"), one]).members] == [("b", 1.0), ("one", 1.0)]
    assert rebuild.members(one) == [("", one, 1.0)]
    assert [(scope, w) for scope, _, w in rebuild.members(sourced)] == [("member0", 1.0),
                                                                       ("member1", 2.0)]


# -- missing weights ---------------------------------------------------------------------------

def test_load_weights_names_the_missing_variable(plain, tmp_path):
    meta, weights, _ = plain
    partial = {k: v for k, v in weights.items() if k != "fc1_bn/beta"}
    with pytest.raises(FerTfError, match=r"^variable fc1_bn/beta is missing from the weights of "
                                         r"the export; re-export it$"):
        write_export(meta, partial, tmp_path / "single")
    pair = rebuild.ensemble_meta([meta.replace(path="a"), meta.replace(path="b")])
    with pytest.raises(FerTfError, match="^variable fc1_bn/beta is missing from the weights of "
                                         "member member1; re-export it$"):
        rebuild.write(pair, {"member0": Weights(weights), "member1": Weights(partial)},
                      str(tmp_path / "pair"))
    prefixed = rebuild.PrefixReader(Weights({"member3/a": 1, "b": 2}), "member3/")
    assert prefixed.has_tensor("a") and not prefixed.has_tensor("b")
    assert prefixed.get_tensor("a") == 1


# -- exports kept as they are, landmark exports -------------------------------------------------

def test_an_export_fer_tf_does_not_rebuild_is_copied_as_it_is(plain, tmp_path):
    source = tmp_path / "keras"
    foreign_export(plain[0], plain[1], source)
    (source / "assets.extra" / "notes").mkdir()
    (source / "assets.extra" / "notes" / "read.me").write_text("kept")
    copy = export.export(str(source), str(tmp_path / "copy"))
    files = sorted(os.path.relpath(os.path.join(root, name), source)
                   for root, _, names in os.walk(source) for name in names)
    assert files == sorted(os.path.relpath(os.path.join(root, name), copy)
                           for root, _, names in os.walk(copy) for name in names)
    for name in files:
        assert (source / name).read_bytes() == open(os.path.join(copy, name), "rb").read()
    for flags in ({"float16": True}, {"int8": True}, {"tta": "flip"}):
        with pytest.raises(FerTfError, match=r"--float16, --int8 and --tta apply to classifiers "
                                             r"and landmark models; someone_elses is exported as "
                                             r"it is$"):
            export.export(str(source), str(tmp_path / "refused"), **flags)
    with pytest.raises(FerTfError, match=r"^--prior-tau: applies to classifiers; someone_elses "
                                         r"has no classes to correct$"):
        export.export(str(source), str(tmp_path / "refused"), prior=(1.0, "x"))
    assert not os.path.exists(tmp_path / "refused")


def test_a_landmark_export_has_its_three_signatures_and_one_set_of_weights(tmp_path):
    meta = landmark_meta()
    weights = random_weights(meta, 3)
    path = write_export(meta, weights, tmp_path / "lm")
    rebuilt = export.export(path, str(tmp_path / "lm16"), float16=True)
    assert set(rebuild.weight_source(rebuilt).get_variable_to_dtype_map()) == set(weights)
    model = exported.LandmarkModel(rebuilt)
    assert set(model._signatures.signatures) == {"serving_default", "image_only:serving_default",
                                                 "crops"}
    photo = np.random.default_rng(4).integers(0, 256, (160, 200, 3)).astype(np.uint8)
    box = (40.0, 30.0, 150.0, 140.0)
    in_one_call = model.points_in(photo, [box, box])
    from_bytes = model.points(records.encode_png(photo[:, :, ::-1]), box)
    # The crops cut here and those the graph cuts resample alike, to 1 % of the crop's side.
    side = crops.crop_window(box)[2]
    assert np.array_equal(in_one_call[0], in_one_call[1])
    assert np.abs(in_one_call[0] - from_bytes).max() < 0.01 * side
    assert np.ptp(from_bytes, axis=0).min() > 0.5          # not one point for all 68
    for flags, problem in (({"tta": "flip"}, "a landmark model keeps its own test-time views"),
                           ({"prior": (1.0, "x")}, "--prior-tau: applies to classifiers")):
        with pytest.raises(FerTfError, match=problem):
            export.export(path, str(tmp_path / "refused"), **flags)
