"""Records: exact round trip to the csv pixels, the 224 variant, manifests, atomic writes."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import SAMPLE_CSV, random_pixels, sample_rows, write_csv
from fer_tf.data import convert, records
from fer_tf.core.errors import FerTfError


def read_split(directory, split):
    manifest = records.read_manifest(directory)
    spec = records.feature_spec(manifest.has_votes)
    out = []
    for path in manifest.split_files(split):
        for raw in tf.data.TFRecordDataset(path):
            ex = tf.io.parse_single_example(raw, spec)
            out.append({k: v.numpy() for k, v in ex.items()})
    return out


def test_round_trip_to_source_pixels(sample_records):
    rows = sample_rows()
    seen = 0
    for split, usage in (("train", "Training"), ("test", "PrivateTest")):
        for ex in read_split(sample_records, split):
            image = tf.io.decode_png(ex["image/encoded"]).numpy()
            emotion, pixels, row_usage = rows[ex["source/row"]]
            assert image.shape == (48, 48, 1)
            assert (ex["image/height"], ex["image/width"], ex["image/channels"]) == (48, 48, 1)
            assert image.ravel().tolist() == [int(v) for v in pixels.split()]
            assert ex["label"] == int(emotion) and row_usage == usage
            seen += 1
    assert seen == 210 + 49


def test_manifest_counts_match_csv(sample_records):
    manifest = records.read_manifest(sample_records)
    rows = sample_rows()
    for split, usage in (("train", "Training"), ("eval", "PublicTest"), ("test", "PrivateTest")):
        expected = np.bincount([int(r[0]) for r in rows if r[2] == usage], minlength=7).tolist()
        assert manifest.splits[split].per_class == expected
        assert manifest.splits[split].count == len(read_split(sample_records, split))
    assert manifest.labels.name == "fer7"
    assert manifest.image == {"height": 48, "width": 48, "channels": 1, "encoding": "png"}
    assert manifest.source["sha256"] == records.sha256_of(SAMPLE_CSV)
    assert manifest.options["split"] == "usage"


@pytest.mark.parametrize("channels", [1, 3])
def test_224_variant_shape(tmp_path, channels):
    out = str(tmp_path / f"r224_{channels}")
    convert.convert_fer2013(SAMPLE_CSV, out, size=224, channels=channels, progress=False)
    ex = read_split(out, "eval")[0]
    image = tf.io.decode_png(ex["image/encoded"]).numpy()
    assert image.shape == (224, 224, channels)
    if channels == 3:
        assert (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all()
    assert records.read_manifest(out).side == 224


def test_ferplus_records_carry_votes(ferplus_records):
    manifest = records.read_manifest(ferplus_records)
    assert manifest.labels.name == "ferplus8" and manifest.has_votes
    for ex in read_split(ferplus_records, "train"):
        assert ex["ferplus/votes"].shape == (10,)
        assert ex["label"] == np.argmax(ex["ferplus/votes"])
    assert manifest.read_stats["ferplus_dropped_no_majority"] > 0 and manifest.source["ferplus_rule"] == "majority"


def test_stratified_split_rerun_gives_identical_manifest(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    for out in (a, b):
        convert.convert_fer2013(SAMPLE_CSV, out, split="stratified", seed=7, progress=False)
    ma, mb = records.read_manifest(a), records.read_manifest(b)
    assert ma == mb
    counts = {s: ma.splits[s].count for s in ("train", "eval", "test")}
    assert counts["train"] == pytest.approx(0.8 * 308, abs=7)
    rows_a = sorted(ex["source/row"] for ex in read_split(a, "test"))
    assert rows_a == sorted(ex["source/row"] for ex in read_split(b, "test"))


def test_failed_conversion_keeps_previous_output(tmp_path, rng):
    out = tmp_path / "rec"
    convert.convert_fer2013(SAMPLE_CSV, str(out), progress=False)
    before = json.loads((out / "manifest.json").read_text())
    rows = [("3", random_pixels(rng), "Training")] * 5 + [("3", "1 2", "Training")]
    bad = write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(FerTfError, match=":7: "):
        convert.convert_fer2013(str(bad), str(out), progress=False)
    assert json.loads((out / "manifest.json").read_text()) == before
    assert [p for p in os.listdir(tmp_path) if ".partial" in p] == []


def test_empty_split_is_refused(tmp_path, rng):
    rows = [(k % 7, random_pixels(rng), "Training") for k in range(14)]
    path = write_csv(tmp_path / "train_only.csv", rows)
    with pytest.raises(FerTfError, match="split\\(s\\) eval, test would be empty; use --split stratified"):
        convert.convert_fer2013(str(path), str(tmp_path / "out"), progress=False)
    assert not (tmp_path / "out").exists()


def test_stale_partial_of_dead_process_is_cleaned(tmp_path):
    stale = tmp_path / ".rec.partial-999999999-abc"
    stale.mkdir()
    (stale / "train-00000-of-00008.tfrecord").write_bytes(b"half")
    convert.convert_fer2013(SAMPLE_CSV, str(tmp_path / "rec"), progress=False)
    assert not stale.exists()


def test_missing_shard_and_manifest_are_named(tmp_path, sample_records):
    with pytest.raises(FerTfError, match="manifest.json: missing"):
        records.read_manifest(str(tmp_path))
    with pytest.raises(FerTfError, match="no such record folder"):
        records.read_manifest(str(tmp_path / "nope"))
    manifest = records.read_manifest(sample_records)
    with pytest.raises(FerTfError, match="no split 'validation'"):
        manifest.split_files("validation")


def test_finished_outputs_get_the_umask_mode_not_the_temporary_one(tmp_path):
    from fer_tf.core import atomic
    old = os.umask(0o022)
    try:
        atomic.write_json(str(tmp_path / "meta.json"), {"a": 1})
        with atomic.atomic_directory(str(tmp_path / "export")) as tmp:
            open(os.path.join(tmp, "x"), "w").close()
    finally:
        os.umask(old)
    # mkstemp / mkdtemp would have left 0600 / 0700: unreadable to a server running as another user
    assert os.stat(tmp_path / "meta.json").st_mode & 0o777 == 0o644
    assert os.stat(tmp_path / "export").st_mode & 0o777 == 0o755


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(format="fer-tf-records/0"), "format 'fer-tf-records/0' is not 'fer-tf-records/1'"),
    (lambda m: m.pop("splits"), "field 'splits' is missing"),
    (lambda m: m.update(label_set={"name": "fer7"}), "field 'label_set' needs a name and a list of classes"),
    (lambda m: m.update(kind="audio"), "field 'kind' is 'audio', not one of images, landmarks, features"),
    (lambda m: m["splits"]["train"].pop("shards"), "field 'splits.train' needs count, per_class and shards"),
    (lambda m: m["splits"]["eval"].update(count="12"), "field 'splits.eval' needs count, per_class and shards"),
])
def test_a_damaged_manifest_is_refused_naming_the_field(tmp_path, sample_records, change, message):
    folder = tmp_path / "copy"
    folder.mkdir()
    data = json.loads(open(os.path.join(sample_records, "manifest.json")).read())
    change(data)
    (folder / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(FerTfError) as raised:
        records.read_manifest(str(folder))
    assert str(raised.value) == (f"{folder / 'manifest.json'}: {message}"
                                 "; rerun `fer-tf records` with this version")


def test_the_manifest_round_trips_and_keeps_what_a_converter_added(sample_records, tmp_path):
    manifest = records.read_manifest(sample_records)
    on_disk = json.loads(open(os.path.join(sample_records, "manifest.json")).read())
    assert manifest.to_json() == on_disk
    assert manifest.read_stats == on_disk["read"] and manifest.fold_count is None
    assert manifest.split_count("train") == on_disk["splits"]["train"]["count"]
    assert manifest.split_per_class("train+eval") == [
        a + b for a, b in zip(on_disk["splits"]["train"]["per_class"], on_disk["splits"]["eval"]["per_class"])]
    counts = manifest.expected_shard_counts("train")
    assert sum(counts.values()) == on_disk["splits"]["train"]["count"]
    assert max(counts.values()) - min(counts.values()) <= 1
