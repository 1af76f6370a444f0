"""Fault tolerance: SIGKILL mid-training and mid-conversion, a second trainer on the same model
dir, corrupt record shards, and a csv with thousands of mixed bad rows."""
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from conftest import LENET_NARROW, LENET_NARROW_FLAGS, SAMPLE_CSV, random_pixels, write_csv
from fer_tf.data import convert, records
from fer_tf.training import run
from fer_tf.serving import exported
from fer_tf.core.errors import FerTfError


def start(args, log_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    log = open(log_path, "w")
    return subprocess.Popen([sys.executable, "-m", "fer_tf.apps.cli", *map(str, args)],
                            stdout=log, stderr=subprocess.STDOUT, env=env)


def wait_for(predicate, timeout=240, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        if proc is not None and proc.poll() is not None:
            return predicate()
        time.sleep(0.2)
    return False


def latest_step(model_dir):
    path = tf.train.latest_checkpoint(model_dir)
    return int(path.rsplit("-", 1)[1]) if path else 0


def test_sigkill_mid_training_resumes_and_second_trainer_is_refused(sample_records, tmp_path):
    model_dir = tmp_path / "run"
    common = ["train", "--data", sample_records, "--model-dir", model_dir, "--checkpoint-steps", 5,
              "--hparams", "batch_size=16", *LENET_NARROW_FLAGS, "--verbose"]
    # The first trainer's budget is far beyond what it can reach before it is killed, so it is
    # still running when the second one asks, however fast or slow the machine: the test waits
    # for checkpoints (observable events), never for how long TensorFlow takes.
    first = start(common + ["--max-steps", 10**6], tmp_path / "first.log")
    try:
        assert wait_for(lambda: latest_step(str(model_dir)) >= 10, proc=first), \
            (tmp_path / "first.log").read_text()[-2000:]
        second = subprocess.run([sys.executable, "-m", "fer_tf.apps.cli", *map(str, common),
                                 "--max-steps", "1000000"], capture_output=True, text=True, timeout=120)
        assert first.poll() is None, "the first trainer ended before the second asked"
        assert second.returncode == 1
        assert f"model dir is in use by another fer-tf train (pid {first.pid})" in second.stderr
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
    killed_at = latest_step(str(model_dir))
    assert killed_at >= 10
    end = killed_at + 20
    resumed = subprocess.run([sys.executable, "-m", "fer_tf.apps.cli", *map(str, common),
                              "--max-steps", str(end)], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    steps = [int(l.split("step = ")[1].split()[0].rstrip(","))
             for l in resumed.stderr.splitlines() if "INFO:tensorflow:loss = " in l]
    assert steps[0] == killed_at                      # continues from the last checkpoint
    assert json.loads((model_dir / "steps" / "local_0.json").read_text())["local_steps"] == end - killed_at
    state = tf.train.get_checkpoint_state(str(model_dir))
    for path in state.all_model_checkpoint_paths:     # every checkpoint kept is readable
        reader = tf.train.load_checkpoint(path)
        assert reader.get_tensor("global_step") == int(path.rsplit("-", 1)[1])
    assert latest_step(str(model_dir)) == end
    model = exported.ExportedModel(str(model_dir))
    assert model.predict([open(os.path.join(os.path.dirname(__file__), "data", "face_happy.png"), "rb").read()]).shape == (1, 7)


def test_sigkill_mid_conversion_leaves_nothing_that_looks_finished(tmp_path):
    rows = gzip.open(SAMPLE_CSV, "rt").read().splitlines()
    big = tmp_path / "big.csv"
    big.write_text("\n".join([rows[0]] + rows[1:] * 30) + "\n")      # 9,240 faces
    out = tmp_path / "rec"
    proc = start(["records", big, "--out", out, "--quiet"], tmp_path / "conv.log")
    partial = lambda: [p for p in os.listdir(tmp_path) if p.startswith(".rec.partial-")]
    try:
        assert wait_for(lambda: partial() and any(
            os.path.getsize(os.path.join(tmp_path, partial()[0], f)) > 100000
            for f in os.listdir(os.path.join(tmp_path, partial()[0]))), proc=proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not out.exists()                            # nothing under the real name
    assert not os.path.exists(os.path.join(tmp_path, partial()[0], "manifest.json"))
    clean = tmp_path / "clean"
    convert.convert_fer2013(str(big), str(clean), progress=False)
    convert.convert_fer2013(str(big), str(out), progress=False)     # the rerun
    assert partial() == []                                          # the dead run's leftovers
    assert json.loads((out / "manifest.json").read_text()) == json.loads((clean / "manifest.json").read_text())
    for shard in os.listdir(clean):
        assert (out / shard).read_bytes() == (clean / shard).read_bytes()


@pytest.fixture
def damaged_records(sample_records, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(sample_records, broken)
    flipped = broken / "train-00001-of-00008.tfrecord"
    data = bytearray(flipped.read_bytes())
    data[5000] ^= 0xFF
    flipped.write_bytes(bytes(data))
    truncated = broken / "train-00002-of-00008.tfrecord"
    truncated.write_bytes(truncated.read_bytes()[:-700])
    return str(broken)


def test_corrupt_shards_are_named(damaged_records, tmp_path):
    result = subprocess.run([sys.executable, "-m", "fer_tf.apps.cli", "train", "--data", damaged_records,
                             "--model-dir", str(tmp_path / "m"), "--max-steps", "30",
                             "--hparams", *LENET_NARROW_FLAGS],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    error = [l for l in result.stderr.splitlines() if l.startswith("fer-tf train: error:")]
    assert len(error) == 1 and "Traceback" not in result.stderr
    assert "train-00001-of-00008.tfrecord: corrupted record" in error[0]
    assert "train-00002-of-00008.tfrecord: truncated record" in error[0]
    assert "--skip-corrupt" in error[0]


@pytest.fixture
def undecodable_records(sample_records, tmp_path):
    """A copy whose train shard 3 has, as its record 2, an intact record (checksums right) whose
    image bytes are not an image."""
    broken = tmp_path / "undecodable"
    shutil.copytree(sample_records, broken)
    shard = broken / "train-00003-of-00008.tfrecord"
    serialized = [r.numpy() for r in tf.data.TFRecordDataset(str(shard))]
    example = tf.train.Example.FromString(serialized[2])
    example.features.feature["image/encoded"].bytes_list.value[0] = b"these bytes are no image"
    serialized[2] = example.SerializeToString()
    with tf.io.TFRecordWriter(str(shard)) as writer:
        for record in serialized:
            writer.write(record)
    return str(broken)


def test_an_undecodable_record_is_named_and_skip_corrupt_skips_it(undecodable_records, tmp_path):
    result = subprocess.run([sys.executable, "-m", "fer_tf.apps.cli", "train", "--data", undecodable_records,
                             "--model-dir", str(tmp_path / "m"), "--max-steps", "10",
                             "--hparams", *LENET_NARROW_FLAGS],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    lines = [l for l in result.stderr.splitlines() if l.startswith("fer-tf train: error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "train-00003-of-00008.tfrecord: record 2 cannot be decoded (Unknown image file format" in lines[0]
    assert "--skip-corrupt" in lines[0]
    messages = []
    metrics, _ = run.train("lenet7", undecodable_records, str(tmp_path / "m2"), max_steps=10,
                           overrides={"batch_size": 16, **LENET_NARROW}, skip_corrupt=True, log=messages.append)
    assert metrics["global_step"] == 10
    assert "--skip-corrupt: skipping 1 unreadable train record(s)" in messages[0]
    assert "record 2 cannot be decoded" in messages[0]


def record_ends(path):
    """End offsets of the records in a TFRecord file, read from its framing by hand
    (length u64, crc u32, data, crc u32) — independent of the code under test."""
    data, ends, offset = open(path, "rb").read(), [], 0
    while offset + 12 <= len(data):
        length = int.from_bytes(data[offset:offset + 8], "little")
        offset += 8 + 4 + length + 4
        ends.append(offset)
    return ends


def test_skip_corrupt_counts_and_trains(damaged_records, sample_records, tmp_path):
    manifest = records.read_manifest(damaged_records)
    damaged = records.damaged_shards(manifest, "train")
    assert [os.path.basename(d[0]) for d in damaged] == [
        "train-00001-of-00008.tfrecord", "train-00002-of-00008.tfrecord"]
    # Expected from how the fixture broke the shards: the records wholly before the flipped
    # byte (offset 5000), and those wholly inside the truncated file, stay readable.
    intact = os.path.join(sample_records, "train-00001-of-00008.tfrecord")
    cut = os.path.join(sample_records, "train-00002-of-00008.tfrecord")
    before_flip = sum(end <= 5000 for end in record_ends(intact))
    kept = sum(end <= os.path.getsize(cut) - 700 for end in record_ends(cut))
    lost = (len(record_ends(intact)) - before_flip) + (len(record_ends(cut)) - kept)
    assert {os.path.basename(p): n for p, n, _, _ in damaged} == {
        "train-00001-of-00008.tfrecord": before_flip, "train-00002-of-00008.tfrecord": kept}
    messages = []
    metrics, _ = run.train("lenet7", damaged_records, str(tmp_path / "m"), max_steps=8,
                           overrides={"batch_size": 16, **LENET_NARROW}, skip_corrupt=True, log=messages.append)
    assert metrics["global_step"] == 8
    assert f"--skip-corrupt: skipping {lost} unreadable train record(s)" in messages[0]


def test_skip_corrupt_covers_landmark_records(tmp_path):
    """The one input pipeline honours --skip-corrupt for every record kind (landmark records
    used to ignore it)."""
    from test_landmarks import synthetic_archive
    archive = str(tmp_path / "lm.tar.gz")
    synthetic_archive(archive)
    out = tmp_path / "lm"
    convert.convert_landmarks(archive, str(out), val_fraction=0.25, seed=1, progress=False,
                              log=lambda *_: None)
    shard = sorted(out.glob("train-*.tfrecord"))[0]
    shard.write_bytes(shard.read_bytes()[:-300])
    overrides = {"batch_size": 2, "width": 0.25, "dense_units": 32}
    with pytest.raises(FerTfError, match="truncated record.*--skip-corrupt"):
        run.train("landmarks", str(out), str(tmp_path / "m1"), max_steps=3, overrides=overrides,
                  log=lambda *_: None)
    metrics, _ = run.train("landmarks", str(out), str(tmp_path / "m2"), max_steps=3,
                           overrides=overrides, skip_corrupt=True, log=lambda *_: None)
    assert metrics["global_step"] == 3


def test_thousands_of_mixed_bad_rows_are_counted_exactly(tmp_path):
    rng = np.random.RandomState(0)
    makers = [lambda: ("9", random_pixels(rng), "Training"),
              lambda: ("3", "1 2 3", "PublicTest"),
              lambda: ("3", random_pixels(rng).replace(" 1", " x", 1), "Training"),
              lambda: ("3", random_pixels(rng), "Nope"),
              lambda: ("3", random_pixels(rng)),
              lambda: ("3", "300 " * 2304, "PrivateTest")]
    rows, bad = [], 0
    for i in range(4000):
        if rng.rand() < 0.4:
            rows.append(makers[rng.randint(len(makers))]())
            bad += 1
        else:
            rows.append((rng.randint(7), random_pixels(rng), ("Training", "PublicTest", "PrivateTest")[i % 3]))
    path = write_csv(tmp_path / "mixed.csv", rows)
    messages = []
    manifest = convert.convert_fer2013(str(path), str(tmp_path / "r"), skip_bad=True,
                                       progress=False, log=messages.append)
    assert manifest.read_stats["bad_rows"] == bad > 1000
    assert sum(s.count for s in manifest.splits.values()) == 4000 - bad
    assert messages[-1] == f"skipped {bad} bad row(s) of 4000"
    with pytest.raises(FerTfError, match=r"mixed.csv:\d+: "):
        convert.convert_fer2013(str(path), str(tmp_path / "r2"), progress=False)
