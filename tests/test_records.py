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
    (lambda m: m.update(format="fer-tf-records/2"), "format 'fer-tf-records/2' is not 'fer-tf-records/1'"),
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
    assert manifest.extra == {"read": on_disk["read"]}          # only what the converter added
    assert manifest.split_count("train") == on_disk["splits"]["train"]["count"]
    assert manifest.split_per_class("train+eval") == [
        a + b for a, b in zip(on_disk["splits"]["train"]["per_class"], on_disk["splits"]["eval"]["per_class"])]
    counts = manifest.expected_shard_counts("train")
    assert sum(counts.values()) == on_disk["splits"]["train"]["count"]
    assert max(counts.values()) - min(counts.values()) <= 1


def write_shards(folder, split, examples, shards, num_classes=3):
    writer = records.ShardedWriter(str(folder), [split], {split: shards}, num_classes)
    for image, label, row in examples:
        writer.write(split, records.make_example(image, label, row), label)
    writer.close()
    return writer


def small_manifest(folder, writer):
    return records.Manifest(dataset="t", label_set={"name": "t", "classes": ["a", "b", "c"]},
                            splits=writer.split_summary(), source={}, options={},
                            image=records.Manifest.image_info(4, 1), folder=str(folder))


def test_the_writer_deals_examples_round_robin_from_the_first_shard(tmp_path):
    examples = [(np.full((4, 4), k, np.uint8), k % 3, 100 + k) for k in range(10)]
    writer = write_shards(tmp_path, "train", examples, 3)
    summary = writer.split_summary()["train"]
    assert summary == {"count": 10, "per_class": [4, 3, 3],
                       "shards": [records.shard_name("train", i, 3) for i in range(3)]}
    rows = [[int(tf.train.Example.FromString(r.numpy()).features.feature["source/row"].int64_list.value[0])
             for r in tf.data.TFRecordDataset(str(tmp_path / name))] for name in summary["shards"]]
    assert rows == [[100, 103, 106, 109], [101, 104, 107], [102, 105, 108]]
    manifest = small_manifest(tmp_path, writer)
    assert manifest.expected_shard_counts("train") == dict(zip(summary["shards"], [4, 3, 3]))
    assert records.damaged_shards(manifest, "train") == []
    assert records.undecodable_records(manifest, "train") == []


def test_a_colour_face_is_stored_rgb_and_read_back_rgb(tmp_path):
    image = np.zeros((4, 4, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 10, 20, 30            # R, G, B
    example = records.make_example(image, 1, 5)
    png = example.features.feature["image/encoded"].bytes_list.value[0]
    assert tf.io.decode_png(png).numpy()[0, 0].tolist() == [10, 20, 30]
    assert example.features.feature["image/channels"].int64_list.value[0] == 3
    crop = np.zeros((8, 6, 3), np.uint8)
    crop[..., 0] = 200
    points = np.arange(136, dtype=float).reshape(68, 2) / 136
    landmark = records.make_landmark_example(crop, points, (1, 2, 3), (1, 2, 3, 4), "dlib", "helen/x")
    png = landmark.features.feature["image/encoded"].bytes_list.value[0]
    assert tf.io.decode_png(png).numpy()[0, 0].tolist() == [200, 0, 0]
    feature = landmark.features.feature
    assert [feature[k].int64_list.value[0] for k in ("image/height", "image/width", "image/channels")] == [8, 6, 3]
    parsed = tf.io.parse_single_example(landmark.SerializeToString(), records.landmark_feature_spec())
    np.testing.assert_allclose(parsed["points"].numpy(), points.ravel(), atol=1e-6)
    assert parsed["box"].numpy().tolist() == [1, 2, 3, 4] and parsed["window"].numpy().tolist() == [1, 2, 3]
    assert parsed["name"].numpy() == b"helen/x"


def test_shard_scans_count_records_and_name_the_damage(tmp_path):
    examples = [(np.full((4, 4), k, np.uint8), k % 3, k) for k in range(300)]
    writer = write_shards(tmp_path, "train", examples, 1)
    path = str(tmp_path / writer.files["train"][0])
    assert records.scan_shard(path) == (300, None)
    data = open(path, "rb").read()
    cut = data[:len(data) // 2]
    with open(path, "wb") as f:
        f.write(cut)
    whole, offset = 0, 0                  # TFRecord framing: length (8), crc (4), data, crc (4)
    while offset + 12 <= len(cut):
        offset += 16 + int.from_bytes(cut[offset:offset + 8], "little")
        whole += offset <= len(cut)
    readable, problem = records.scan_shard(path)
    assert readable == whole and 100 < whole < 200
    assert problem.startswith("truncated record at ") and problem.endswith("Read less bytes than requested")
    damaged = records.damaged_shards(small_manifest(tmp_path, writer), "train")
    assert damaged == [(path, readable, 300, problem)]
    # The decodability scan stops quietly where the damage starts (damaged_shards reports it).
    assert records.undecodable_records(small_manifest(tmp_path, writer), "train") == []


def test_undecodable_records_are_named_by_index(tmp_path):
    writer = records.ShardedWriter(str(tmp_path), ["train"], {"train": 1}, 3)
    for k in range(4):
        example = records.make_example(np.full((4, 4), k, np.uint8), 0, k)
        if k in (1, 3):
            example.features.feature["image/encoded"].bytes_list.value[0] = b"not a png"
        writer.write("train", example, 0)
    writer.close()
    bad = records.undecodable_records(small_manifest(tmp_path, writer), "train")
    path = str(tmp_path / writer.files["train"][0])
    assert bad == [(path, index, "Unknown image file format. One of JPEG, PNG, GIF, BMP required.")
                   for index in (1, 3)]


def test_iter_split_gives_rows_on_request(sample_records):
    encoded, labels, rows = next(records.iter_split(sample_records, "test", 5, rows=True))
    assert len(encoded) == len(labels) == len(rows) == 5 and rows.dtype.kind == "i"
    assert len(next(records.iter_split(sample_records, "test", 5))) == 2


def test_a_corrupt_shard_stops_iter_split_with_its_first_line(tmp_path, sample_records):
    import shutil
    copy = tmp_path / "copy"
    shutil.copytree(sample_records, copy)
    shard = copy / records.read_manifest(str(copy)).splits["test"].shards[0]
    data = shard.read_bytes()
    shard.write_bytes(data[:len(data) // 2])
    with pytest.raises(FerTfError) as raised:
        list(records.iter_split(str(copy), "test", 5))
    message = str(raised.value)
    assert message.startswith(f"{shard}: corrupt record shard (") and "\n" not in message
    assert message.endswith("); reconvert with `fer-tf records`")


def test_sha256_of_a_source_names_what_cannot_be_read(tmp_path):
    import hashlib
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 5000)          # more than one chunk
    assert records.sha256_of_checked(str(big)) == hashlib.sha256(big.read_bytes()).hexdigest()
    with pytest.raises(FerTfError, match="no such file; check the path"):
        records.sha256_of_checked(str(tmp_path / "missing.csv"))
    with pytest.raises(FerTfError, match=r"cannot read \(Is a directory\); pass a readable file"):
        records.sha256_of_checked(str(tmp_path))


def test_converter_extras_read_through_the_manifest():
    manifest = records.Manifest.from_json(
        {"format": records.FORMAT, "dataset": "genki", "label_set": {"name": "smile2", "classes": ["no", "smile"]},
         "splits": {"fold0": {"count": 2, "per_class": [1, 1], "shards": ["a"]},
                    "fold1": {"count": 3, "per_class": [2, 1], "shards": ["b"]}},
         "source": {}, "options": {}, "image": records.Manifest.image_info(48, 1),
         "folds": {"count": 2}, "faces": {"photos": 6}, "split_aliases": {"train": "fold0", "eval": "fold1"}},
        "m.json")
    assert manifest.fold_count == 2 and manifest.photos == 6 and manifest.side == 48
    assert manifest.resolve_split("train") == ["fold0"] and manifest.split_count("fold0+fold1") == 5
    assert manifest.split_per_class("eval") == [2, 1] and manifest.feature_dim is None
    with pytest.raises(FerTfError, match=r"no split 'fold7' \(the folder has fold0, fold1, eval, train\)"):
        manifest.split_count("fold7")
    bare = records.Manifest.from_json({**manifest.to_json(), "faces": None, "folds": None}, "m.json")
    assert bare.photos is None and bare.fold_count is None


def test_a_shard_with_fewer_records_than_the_manifest_says_is_damaged(tmp_path):
    writer = write_shards(tmp_path, "train", [(np.zeros((4, 4), np.uint8), 0, k) for k in range(4)], 1)
    manifest = small_manifest(tmp_path, writer)
    manifest.splits["train"] = records.Split(count=6, per_class=[6, 0, 0], shards=writer.files["train"])
    path = str(tmp_path / writer.files["train"][0])
    assert records.damaged_shards(manifest, "train") == [(path, 4, 6, "fewer records than the manifest says")]


def test_a_missing_shard_is_named(tmp_path, sample_records):
    import shutil
    copy = tmp_path / "copy"
    shutil.copytree(sample_records, copy)
    manifest = records.read_manifest(str(copy))
    gone = copy / manifest.splits["eval"].shards[-1]
    gone.unlink()
    with pytest.raises(FerTfError) as raised:
        manifest.split_files("eval")
    assert str(raised.value) == (f"{gone}: record shard listed in the manifest is missing; rerun "
                                 "`fer-tf records`")
    assert len(manifest.split_files("train")) == len(manifest.splits["train"].shards)


def test_splits_are_immutable_and_their_fields_exact(tmp_path, sample_records):
    split = records.Split(count=1, per_class=[1], shards=["a"])
    with pytest.raises(AttributeError):
        split.count = 2
    data = json.loads(open(os.path.join(sample_records, "manifest.json")).read())
    data["splits"]["train"]["checksum"] = "x"
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(FerTfError, match="field 'splits.train' needs count, per_class and shards"):
        records.read_manifest(str(tmp_path))
