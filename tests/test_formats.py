"""The typed owners of fer-tf's metadata files: ExportMeta (fer_tf.json + labels.txt) and
RunMeta (fer_tf_run.json) — round trips, what they derive, and one line per damaged field.
(The record manifest's owner is tested in test_records.py.)"""
import json
import os

import pytest

from fer_tf.core import export_format
from fer_tf.core.errors import FerTfError
from fer_tf.core.export_format import ExportMeta
from fer_tf.training.config import RunMeta

FER7 = {"name": "fer7", "classes": ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]}
SINGLE = {"model": "vgg", "label_set": FER7, "image_size": [48, 48, 1], "input": "image_bytes",
          "hparams": {"crop_size": 40, "tta": "flip", "smile_head": True},
          "prior_correction": {"tau": 0.7, "train_prior": [1 / 7] * 7, "source": "fer2013 train split"}}
ENSEMBLE = {"model": "ensemble", "label_set": FER7, "image_size": [48, 48, 1], "input": "image_bytes",
            "members": [{"model": "vgg", "hparams": {"tta": "flip"}, "image_size": [48, 48, 1],
                         "weight": 1.0, "source": "a"},
                        {"model": "lenet7", "hparams": {}, "image_size": [42, 42, 1],
                         "weight": 2.0, "source": "b"}]}


def write_export(folder, data):
    os.makedirs(folder / "assets.extra")
    (folder / "saved_model.pb").write_bytes(b"")
    (folder / "assets.extra" / "fer_tf.json").write_text(json.dumps(data))
    return str(folder)


@pytest.mark.parametrize("data", [SINGLE, ENSEMBLE])
def test_export_meta_round_trips(data):
    assert ExportMeta.from_json(data).to_json() == data


def test_what_a_single_export_says():
    meta = ExportMeta.from_json(SINGLE)
    assert meta.classes == FER7["classes"] and meta.labels.name == "fer7"
    assert meta.image_size == (48, 48, 1) and meta.tta == "flip" and meta.crop_size == 40
    assert meta.has_smile_head and not meta.is_ensemble and meta.singles == (meta,)
    plain = ExportMeta.from_json({**SINGLE, "hparams": {}})
    assert plain.tta == "none" and plain.crop_size == 0 and not plain.has_smile_head


def test_metadata_is_immutable_and_equal_wherever_it_was_read():
    meta = ExportMeta.from_json(SINGLE, path="models/a")
    assert meta == ExportMeta.from_json(SINGLE, path="elsewhere/b")
    with pytest.raises(AttributeError):
        meta.model = "lenet7"
    assert meta.replace(model="lenet7").model == "lenet7" and meta.model == "vgg"


def test_what_an_ensemble_says():
    meta = ExportMeta.from_json(ENSEMBLE, path="models/e")
    assert meta.is_ensemble and [m.model for m in meta.singles] == ["vgg", "lenet7"]
    assert [m.weight for m in meta.members] == [1.0, 2.0]
    assert [m.tta for m in meta.members] == ["flip", "none"]
    assert meta.members[1].path == "models/e#member1" and meta.members[1].label_set is None
    assert not meta.has_smile_head


def test_assets_are_written_once_together(tmp_path):
    paths = export_format.write_assets(str(tmp_path), ExportMeta.from_json(SINGLE))
    assert json.loads(open(paths["fer_tf.json"]).read()) == SINGLE
    assert open(paths["labels.txt"]).read() == "\n".join(FER7["classes"]) + "\n"
    assert sorted(os.listdir(tmp_path)) == ["fer_tf.json", "labels.txt"]


def test_read_meta_finds_an_exports_and_a_model_dirs(tmp_path):
    export = write_export(tmp_path / "export", SINGLE)
    meta = export_format.read_meta(export)
    assert meta.path == export and meta.model == "vgg"
    model_dir = tmp_path / "run"
    model_dir.mkdir()
    (model_dir / "fer_tf.json").write_text(json.dumps({**SINGLE, "model": "lenet7"}))
    assert export_format.read_meta(str(model_dir)).model == "lenet7"


@pytest.mark.parametrize("change, message", [
    (lambda m: m.pop("model"), "field 'model' is missing"),
    (lambda m: m.pop("image_size"), "field 'image_size' is missing"),
    (lambda m: m.update(image_size=[48, 48]), "field 'image_size' needs [height, width, channels]"),
    (lambda m: m.update(image_size=[48, 48, "1"]), "field 'image_size' needs [height, width, channels]"),
    (lambda m: m.update(image_size=[48, 48, 1, 1]), "field 'image_size' needs [height, width, channels]"),
    (lambda m: m.pop("label_set"), "field 'label_set' needs a name and a list of classes"),
    (lambda m: m.update(label_set={"classes": []}), "field 'label_set' needs a name and a list of classes"),
    (lambda m: m.pop("hparams"), "field 'hparams' is missing"),
    (lambda m: m.update(members=[]), "field 'members' needs a list of member models"),
    (lambda m: m.update(colour="red"), "field 'colour' is not one this version knows"),
    (lambda m: m.update(zone=1, colour="red"), "field 'colour' is not one this version knows"),
])
def test_damaged_export_metadata_is_refused_naming_the_field(tmp_path, change, message):
    data = json.loads(json.dumps(SINGLE))
    change(data)
    export = write_export(tmp_path / "export", data)
    with pytest.raises(FerTfError) as raised:
        export_format.read_meta(export)
    where = os.path.join(export, "assets.extra", "fer_tf.json")
    assert str(raised.value) == f"{where}: {message}; export the model again with `fer-tf export`"


def test_a_member_is_validated_too(tmp_path):
    data = json.loads(json.dumps(ENSEMBLE))
    data["members"][1].pop("image_size")
    with pytest.raises(FerTfError, match=r"fer_tf.json#member1: field 'image_size' is missing"):
        export_format.read_meta(write_export(tmp_path / "e", data))


def test_an_export_without_metadata_is_named(tmp_path):
    export = tmp_path / "foreign"
    export.mkdir()
    (export / "saved_model.pb").write_bytes(b"")
    with pytest.raises(FerTfError, match="fer_tf.json: missing; this SavedModel was not exported by fer-tf"):
        export_format.read_meta(str(export))


def test_run_meta_round_trips_and_refuses_another_run(tmp_path):
    assert RunMeta.read(str(tmp_path)) is None
    run = RunMeta(model="vgg", label_set="fer7", image_size=(48, 48, 1), data_dir="records/fer2013")
    run.write(str(tmp_path))
    assert json.loads((tmp_path / "fer_tf_run.json").read_text()) == {
        "model": "vgg", "label_set": "fer7", "image_size": [48, 48, 1], "data_dir": "records/fer2013"}
    assert RunMeta.read(str(tmp_path)) == run
    run.refuse_other(RunMeta("vgg", "fer7", (48, 48, 1), "elsewhere"), str(tmp_path))  # records may move
    path = tmp_path / "fer_tf_run.json"
    for other, text in [
            (RunMeta("lenet7", "fer7", (48, 48, 1)), "made for model vgg, not lenet7 (from --model)"),
            (RunMeta("vgg", "ferplus8", (48, 48, 1)), "made for label_set fer7, not ferplus8 (from --data)"),
            (RunMeta("vgg", "fer7", (224, 224, 3)),
             "made for image_size [48, 48, 1], not [224, 224, 3] (from --model)")]:
        with pytest.raises(FerTfError) as raised:
            run.refuse_other(other, str(tmp_path))
        flag = text.rsplit("(from ", 1)[1].rstrip(")")
        assert str(raised.value) == (f"{path}: this model dir was {text}; use a new --model-dir "
                                     f"or the original {flag}")


def test_a_damaged_run_meta_is_named(tmp_path):
    (tmp_path / "fer_tf_run.json").write_text(json.dumps({"model": "vgg", "label_set": "fer7"}))
    with pytest.raises(FerTfError, match="fer_tf_run.json: field 'image_size' is missing"):
        RunMeta.read(str(tmp_path))
    (tmp_path / "fer_tf_run.json").write_text("{")
    with pytest.raises(FerTfError, match="fer_tf_run.json: not valid JSON"):
        RunMeta.read(str(tmp_path))
