"""A smile head on an expression export's trunk: the logistic fit, GENKI's held-out protocol, and
the export that answers expression and smile in one call."""
import numpy as np
import pytest
import tensorflow as tf

from fer_tf.apps import smile_head
from fer_tf.core.errors import FerTfError


@pytest.fixture(scope="module")
def genki_smile_records(tmp_path_factory):
    from fer_tf.data import convert
    from test_genki import make_archive
    folder = tmp_path_factory.mktemp("smile")
    make_archive(str(folder / "genki4k.tar.gz"))
    out = str(folder / "genki48")
    convert.convert_genki(str(folder / "genki4k.tar.gz"), out, folds=3, size=48, progress=False,
                          log=lambda *_: None)
    return out


def test_logistic_fit_is_the_penalised_optimum(rng):
    x = rng.normal(size=(300, 5))
    y = (x @ np.array([2.0, -1.0, 0.0, 0.5, 0.0]) + 0.3 + rng.normal(size=300) > 0).astype(float)
    l2 = 1e-2
    w, b = smile_head.fit_logistic(x, y, l2)
    p = 1 / (1 + np.exp(-(x @ w + b)))
    # The gradient of mean log-loss + l2/2 |w|^2 (bias unpenalised) vanishes at the optimum.
    np.testing.assert_allclose(x.T @ (p - y) / len(y) + l2 * w, 0, atol=1e-8)
    assert abs(np.mean(p - y)) < 1e-8
    assert np.abs(smile_head.fit_logistic(x, y, 10.0)[0]).max() < np.abs(w).max() / 10


def test_each_fold_is_scored_by_a_head_that_never_saw_it(rng):
    faces = [rng.normal(size=(40, 1, 6)) for _ in range(4)]
    views = [np.concatenate([f, f + 0.1 * rng.normal(size=f.shape)], axis=1) for f in faces]
    labels = [(v[:, 0, 0] + v[:, 0, 1] > 0).astype(np.int64) for v in views]
    held_out, chosen = smile_head.cross_validate(views, labels, scored=2)
    assert len(held_out) == 4 and len(chosen) == 4
    assert np.mean(np.concatenate([(p > 0.5) == y for p, y in zip(held_out, labels)])) > 0.85
    flipped = [1 - labels[0]] + labels[1:]          # fold 0's own labels must not matter to it
    again, _ = smile_head.cross_validate(views, flipped, scored=2)
    np.testing.assert_allclose(again[0], held_out[0])
    assert not np.allclose(again[1], held_out[1])


# dlib_resnet: its pooled trunk, whole faces; vgg (thin): its last hidden layer, 40 px centre crops
# and flip views, as exported.
@pytest.mark.parametrize("model, overrides", [
    ("dlib_resnet", {}),
    ("vgg", {"widths": [8, 8, 8, 8], "fc_units": [16], "tta": "flip"})])
def test_smile_head_export_gives_expression_and_smile_in_one_call(model, overrides, sample_records,
                                                                   genki_smile_records, tmp_path, capsys):
    from fer_tf.apps import cli
    from fer_tf.apps.analyzer import Analyzer
    from fer_tf.data import records
    from fer_tf.serving import exported
    from fer_tf.training import run
    _, export = run.train(model, sample_records, str(tmp_path / "run"), max_steps=1,
                          overrides={"batch_size": 8, **overrides}, log=lambda *_: None)
    views = 2 if overrides.get("tta") == "flip" else 1
    out = str(tmp_path / "with_smile")
    assert cli.main(["smile-head", export, "--data", genki_smile_records, "--out", out]) == 0
    printed = capsys.readouterr().out
    assert "held-out folds" in printed and f"wrote {out}" in printed
    model = exported.ExportedModel(out)
    assert model.has_smile and model.meta.smile_head["folds"] == 3
    # The export's smile is the head fitted on every fold, applied to the original trunk's
    # features of both views and averaged (same decode: the image-bytes signature).
    reader = tf.train.load_checkpoint(f"{out}/variables/variables")
    w, b = reader.get_tensor("smile_logits/kernel")[:, 0], reader.get_tensor("smile_logits/bias")[0]
    [(features, _)] = smile_head.trunk_features(export, genki_smile_records, ["fold0"])
    features = features[:, :views]       # the views the export averages
    encoded, _ = next(records.iter_split(genki_smile_records, "fold0", 256))
    served = model._signatures(exported.SERVING_DEFAULT, image_bytes=np.array(list(encoded), dtype=object))
    np.testing.assert_allclose(served["smile"], smile_head.smile_probability(features, w, b), atol=2e-5)
    assert served["probabilities"].shape == (len(encoded), 7)
    np.testing.assert_allclose(served["probabilities"], exported.ExportedModel(export).predict(encoded),
                               atol=1e-5)       # the expression output is the source export's
    # One call gives both; the export it was made from has no smile.
    face = (np.arange(48 * 48).reshape(48, 48, 1) % 251).astype(np.uint8)
    probabilities, smiles = model.predict_faces_and_smiles(face[None])
    assert probabilities.shape == (1, 7) and smiles.shape == (1,)
    assert exported.ExportedModel(export).predict_faces_and_smiles(face[None])[1] is None
    analyzer = Analyzer(out, detect=False, landmarks=None, precision="float32")
    assert analyzer.smile_model is None and analyzer.smile_from_model
    result = analyzer.analyze(np.repeat(face, 3, axis=2))
    np.testing.assert_allclose(result.faces[0].smile, smiles[0], atol=1e-6)


def test_smile_head_refuses_models_and_records_it_cannot_use(sample_records, genki_smile_records,
                                                              lenet_export):
    with pytest.raises(FerTfError, match="a lenet7 export; a smile head needs"):
        smile_head.check_inputs(lenet_export, genki_smile_records)
