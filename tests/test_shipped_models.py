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
from fer_tf.serving import exported

MODELS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models")
RECORDED = json.load(open(os.path.join(DATA, "shipped_models.json")))
SHIPPED = sorted(d for d in os.listdir(MODELS) if os.path.isdir(os.path.join(MODELS, d)))
# Landmark exports have their own test (tests/test_landmark_heatmap.py).
CLASSIFIERS = [d for d in SHIPPED if RECORDED.get(d, {}).get("task") != "landmarks"]


def test_every_shipped_model_has_a_recorded_figure():
    assert SHIPPED and set(SHIPPED) <= set(RECORDED), "record a new export in shipped_models.json"
    for name in SHIPPED:
        labels = exported.read_meta(os.path.join(MODELS, name))["label_set"]["name"]
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
