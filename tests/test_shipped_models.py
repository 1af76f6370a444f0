"""Every export shipped under models/: loads, serves PNG bytes and raw faces alike, calls the
bundled happy face happy, and reproduces the accuracy recorded for it on the sample's
PrivateTest rows (tests/data/shipped_models.json) within one face; a model of other classes
(the smile model: "records": null) is checked on its signatures and the happy face only, its
figures live in the README (and tests/test_api.py runs it on a real photo)."""
import json
import os

import cv2
import numpy as np
import pytest

from conftest import DATA, FACE_PNG
from fer_tf.data import records
from fer_tf.serving import exported, rebuild

MODELS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models")
RECORDED = json.load(open(os.path.join(DATA, "shipped_models.json")))
SHIPPED = sorted(d for d in os.listdir(MODELS) if os.path.isdir(os.path.join(MODELS, d)))
# Exports loaded as ExportedModel (classifiers); landmark exports have their own test
# (tests/test_landmark_heatmap.py).
CLASSIFIERS = [d for d in SHIPPED if rebuild.kind_of(exported.read_meta(os.path.join(MODELS, d)))
               .client is exported.ExportedModel]


def test_every_shipped_model_has_a_recorded_figure():
    assert SHIPPED and set(SHIPPED) <= set(RECORDED), "record a new export in shipped_models.json"
    for name in SHIPPED:
        labels = exported.read_meta(os.path.join(MODELS, name)).labels.name
        assert (labels == "landmarks68") == (RECORDED[name].get("task") == "landmarks"), name


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_shipped_model(name, sample_records, ferplus_records):
    model = exported.ExportedModel(os.path.join(MODELS, name))
    recorded = RECORDED[name]
    if recorded["records"] is None:          # not a FER model (smile): the happy face below,
        data = sample_records                # and both signatures agree on the sample's faces
        recorded = {"test_faces": 49, "test_correct": None}
    else:
        data = {"fer2013": sample_records, "ferplus": ferplus_records}[recorded["records"]]
    correct = total = 0
    for encoded, labels in records.iter_split(data, "test", 64):
        from_bytes = model.predict(encoded)
        faces = np.stack([cv2.imdecode(np.frombuffer(e, np.uint8), 0) for e in encoded])[..., None]
        from_faces = model.predict_faces(faces)
        np.testing.assert_allclose(from_faces, from_bytes, atol=1e-5)
        correct += int((from_bytes.argmax(axis=1) == labels).sum())
        total += len(labels)
    assert total == recorded["test_faces"]
    if recorded["test_correct"] is not None:
        assert abs(correct - recorded["test_correct"]) <= 1, f"{correct} of {total} correct"
    happy = model.predict([open(FACE_PNG, "rb").read()])[0]
    assert model.label_set.classes[happy.argmax()] in ("happy", "happiness", "smile")


@pytest.mark.parametrize("name", ["default", "smile"])
def test_unoptimised_graph_gives_the_same_probabilities(name):
    """`optimize=False` (one-photo `predict`) skips Grappler only: the same numbers."""
    faces = np.random.RandomState(0).randint(0, 256, (8, 48, 48, 1)).astype(np.uint8)
    path = os.path.join(MODELS, name)
    optimised = exported.ExportedModel(path).predict_faces(faces)
    plain = exported.ExportedModel(path, optimize=False)
    np.testing.assert_allclose(plain.predict_faces(faces), optimised, atol=1e-4)
    assert plain._signatures.session._config.graph_options.rewrite_options.disable_meta_optimizer


@pytest.mark.parametrize("name", ["smile", "ensemble_fer2013"])
def test_the_serving_cut_of_the_graph_serves_like_the_whole_saved_model(name):
    """`Signatures` imports only what serving runs (no initializers, no save ops): the same
    probabilities as TensorFlow's own v1 loader, from little more than half the nodes."""
    import tensorflow as tf
    path = os.path.join(MODELS, name)
    faces = np.random.RandomState(1).randint(0, 256, (8, 48, 48, 1)).astype(np.uint8)
    cut = exported.Signatures(path)
    whole = tf.compat.v1.Session(graph=tf.Graph())
    with whole.graph.as_default():
        meta_graph = tf.compat.v1.saved_model.loader.load(whole, [tf.saved_model.SERVING], path)
    signature = meta_graph.signature_def[exported.FACES_SIGNATURE]
    expected = whole.run(signature.outputs["probabilities"].name,
                         {signature.inputs[exported.FACES_SIGNATURE].name: faces})
    got = cut(exported.FACES_SIGNATURE, faces=faces)["probabilities"]
    np.testing.assert_allclose(got, expected, atol=1e-6)
    kept = cut.session.graph.as_graph_def().node
    assert not {"VarIsInitializedOp", "SaveV2"} & {node.op for node in kept}
    assert len(kept) < 0.6 * len(meta_graph.graph_def.node), (len(kept), len(meta_graph.graph_def.node))


# ---- behaviour pinned when shipped (tools/pin_shipped_models.py) --------------------------------
PINNED = json.load(open(os.path.join(DATA, "shipped_behaviour.json")))
# Far below what separates two exports, or one export with and without its views, prior
# correction or weight storage (checked below), far above run-to-run noise (~1e-6).
PIN_TOLERANCE = 2e-4


def sample_test_faces(records_dir):
    faces = []
    for encoded, _ in records.iter_split(records_dir, "test", 256):
        faces += [cv2.imdecode(np.frombuffer(e, np.uint8), 0)[..., None] for e in encoded]
    return np.stack(faces)


def storage_of(path):
    import tensorflow as tf
    reader = tf.train.load_checkpoint(os.path.join(path, "variables", "variables"))
    names = {n.split("/")[-1] for n in reader.get_variable_to_shape_map()}
    dtypes = set(map(str, reader.get_variable_to_dtype_map().values()))
    if any(n.endswith("_scale") for n in names) and "<dtype: 'int8'>" in dtypes:
        return "int8"
    return "float16" if "<dtype: 'float16'>" in dtypes else "float32"


def test_every_shipped_classifier_is_pinned():
    assert set(CLASSIFIERS) == set(PINNED) - {"_about"}, "run tools/pin_shipped_models.py"


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_shipped_behaviour_matches_what_was_pinned(name, sample_records):
    pinned = PINNED[name]
    path = os.path.join(MODELS, name)
    model = exported.ExportedModel(path)
    assert model.meta.model == pinned["model"]
    assert model.meta.labels.name == pinned["label_set"]
    assert list(model.meta.image_size) == pinned["image_size"]
    assert [m.tta for m in model.meta.singles] == pinned["views"]
    assert (model.meta.prior_correction or {}).get("tau") == pinned["prior_tau"]
    assert model.has_smile == pinned["smile_head"]
    assert storage_of(path) == pinned["storage"]
    probabilities, smiles = model.predict_faces_and_smiles(sample_test_faces(sample_records))
    np.testing.assert_allclose(probabilities, pinned["probabilities"], atol=PIN_TOLERANCE, rtol=0)
    if pinned["smile"] is None:
        assert smiles is None
    else:
        np.testing.assert_allclose(smiles, pinned["smile"], atol=PIN_TOLERANCE, rtol=0)


def test_the_pins_tell_every_shipped_export_apart():
    by_labels = {}
    for name in CLASSIFIERS:
        by_labels.setdefault(PINNED[name]["label_set"], []).append(name)
    for names in by_labels.values():
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                gap = np.abs(np.array(PINNED[a]["probabilities"]) - PINNED[b]["probabilities"]).max()
                assert gap > 50 * PIN_TOLERANCE, (a, b, gap)


def test_the_pins_tell_the_default_from_its_other_settings(sample_records, tmp_path):
    """The default rebuilt without its prior correction, or without its test-time views, does not
    pass for the default (its weight storage is pinned by storage_of above)."""
    from fer_tf.serving import rebuild
    path = os.path.join(MODELS, "default")
    meta = exported.read_meta(path)
    assert meta.prior_correction and meta.tta == "flip"
    faces = sample_test_faces(sample_records)
    pinned = np.array(PINNED["default"]["probabilities"])
    variants = {"no prior correction": rebuild.with_prior_correction(meta, 0, [1], "-"),
                "no views": rebuild.with_tta(meta, "none")}
    for what, variant in variants.items():
        out = str(tmp_path / what.replace(" ", "_"))
        rebuild.write(variant, {"": rebuild.weight_source(path)}, out, "int8")
        got = exported.ExportedModel(out).predict_faces(faces)
        assert np.abs(got - pinned).max() > 10 * PIN_TOLERANCE, what


def test_bf16_arithmetic_is_what_auto_picks_on_such_cpus_and_stays_close(sample_records, monkeypatch):
    """`precision="auto"` (predict and the Analyzer) runs the CPU graph in bfloat16 where the
    CPU has it natively; the answers stay within 0.02 of float32 on the sample's faces."""
    from fer_tf.core.errors import FerTfError
    monkeypatch.setattr(exported, "cpu_has_bf16", lambda: True)
    assert exported.resolve_precision("auto") == "bf16"
    monkeypatch.setattr(exported, "cpu_has_bf16", lambda: False)
    assert exported.resolve_precision("auto") == "float32"
    with pytest.raises(FerTfError, match="precision='fp16'"):
        exported.resolve_precision("fp16")
    faces = sample_test_faces(sample_records)
    path = os.path.join(MODELS, "default")
    full, full_smile = exported.ExportedModel(path).predict_faces_and_smiles(faces)
    half, half_smile = exported.ExportedModel(path, precision="bf16").predict_faces_and_smiles(faces)
    assert np.abs(half - full).max() < 0.02 and np.abs(half_smile - full_smile).max() < 0.02
    assert (half.argmax(axis=1) == full.argmax(axis=1)).mean() >= 0.95
    np.testing.assert_allclose(half.sum(axis=1), 1.0, atol=1e-5)     # renormalised
