"""Bad input through the real command line: one line naming the file, line or flag and the fix,
a non-zero exit, no traceback; and the demo path records -> train -> eval -> export -> predict."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import FACE_PNG, LENET_NARROW_FLAGS, random_pixels, write_csv


def fer_tf(*args, cwd=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "fer_tf.apps.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=300)


def assert_one_line_error(result, *fragments, status=1):
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    lines = [l for l in result.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_missing_csv(tmp_path):
    assert_one_line_error(fer_tf("records", tmp_path / "none.csv", "--out", tmp_path / "r"),
                          "none.csv: no such file")


def test_garbled_csv(tmp_path):
    path = tmp_path / "garbage.csv.gz"
    path.write_bytes(b"\x1f\x8b" + os.urandom(3000))
    assert_one_line_error(fer_tf("records", path, "--out", tmp_path / "r", "--quiet"),
                          "garbage.csv.gz: not a readable FER2013 csv")


def test_wrong_columns(tmp_path):
    path = tmp_path / "cols.csv"
    path.write_text("label,pixels\n1,2\n")
    assert_one_line_error(fer_tf("records", path, "--out", tmp_path / "r", "--quiet"),
                          "cols.csv:1: header is", "expected 'emotion,pixels,Usage'")


def test_bad_row_then_skip_bad(tmp_path, rng):
    rows = [(k % 7, random_pixels(rng), usage) for usage in ("Training", "PublicTest", "PrivateTest")
            for k in range(7)]
    rows.insert(3, (2, "0 0 0", "Training"))
    path = write_csv(tmp_path / "bad.csv", rows)
    out = tmp_path / "r"
    assert_one_line_error(fer_tf("records", path, "--out", out, "--quiet"),
                          "bad.csv:5: pixels has 3 values, expected 2304", "--skip-bad")
    assert not out.exists()
    ok = fer_tf("records", path, "--out", out, "--quiet", "--skip-bad")
    assert ok.returncode == 0, ok.stderr
    assert "skipped 1 bad row(s) of 22" in ok.stdout
    assert json.loads((out / "manifest.json").read_text())["read"]["bad_rows"] == 1


def test_empty_split(tmp_path, rng):
    path = write_csv(tmp_path / "train_only.csv", [(k % 7, random_pixels(rng), "Training") for k in range(7)])
    assert_one_line_error(fer_tf("records", path, "--out", tmp_path / "r", "--quiet"),
                          "split(s) eval, test would be empty")


def test_unknown_model(sample_records, tmp_path):
    assert_one_line_error(fer_tf("train", "--model", "alexnet", "--data", sample_records,
                                 "--model-dir", tmp_path / "m"),
                          "--model: unknown model 'alexnet'; known models: ", "lenet7", status=2)


def test_missing_record_folder_and_shard(sample_records, tmp_path):
    assert_one_line_error(fer_tf("train", "--data", tmp_path / "nope", "--model-dir", tmp_path / "m"),
                          "nope: no such record folder")
    broken = tmp_path / "broken"
    shutil.copytree(sample_records, broken)
    os.remove(broken / "train-00003-of-00008.tfrecord")
    assert_one_line_error(fer_tf("train", "--data", broken, "--model-dir", tmp_path / "m"),
                          "train-00003-of-00008.tfrecord: record shard listed in the manifest is missing")


def test_truncated_record_file_is_named(sample_records, tmp_path, session_export):
    broken = tmp_path / "broken"
    shutil.copytree(sample_records, broken)
    shard = broken / "test-00001-of-00002.tfrecord"
    shard.write_bytes(shard.read_bytes()[:3000])
    assert_one_line_error(fer_tf("eval", "--model", session_export, "--data", broken,
                                 "--confusion-png", tmp_path / "cm.png"),
                          "test-00001-of-00002.tfrecord: corrupt record shard")


def test_savedmodel_for_another_label_set(ferplus_records, session_export, tmp_path):
    assert_one_line_error(fer_tf("eval", "--model", session_export, "--data", ferplus_records,
                                 "--confusion-png", tmp_path / "cm.png"),
                          "records carry label set ferplus8", "trained on fer7")


def test_bad_hparams_flag(sample_records, tmp_path):
    assert_one_line_error(fer_tf("train", "--data", sample_records, "--model-dir", tmp_path / "m",
                                 "--hparams", "learning_rat=0.1"),
                          "--hparams: unknown name(s) learning_rat", status=2)


def test_hparams_values_parse():
    from fer_tf.apps.cli.flags import parse_hparams
    assert parse_hparams(["batch_norm=false", "attention=True", "keep_prob=0.6", "loss=votes",
                     "filters=[32,64]"]) == {"batch_norm": False, "attention": True,
                                             "keep_prob": 0.6, "loss": "votes", "filters": [32, 64]}


@pytest.fixture(scope="module")
def session_export(sample_records, tmp_path_factory):
    """records -> train -> export through the command line, as `make demo` does."""
    work = tmp_path_factory.mktemp("cli")
    result = fer_tf("train", "--model", "lenet7", "--data", sample_records, "--model-dir",
                    work / "run", "--max-steps", "6", "--hparams", "batch_size=32", *LENET_NARROW_FLAGS,
                    "--seed", "3")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "best export: " in result.stdout
    assert "Warning" not in result.stderr       # quiet logs, a seeded run too
    result = fer_tf("export", "--model-dir", work / "run", "--out", work / "export")
    assert result.returncode == 0, result.stderr
    return str(work / "export")


def test_eval_export_predict_commands(session_export, sample_records, tmp_path):
    result = fer_tf("eval", "--model", session_export, "--data", sample_records, "--split", "test",
                    "--confusion-png", tmp_path / "cm.png")
    assert result.returncode == 0, result.stderr
    assert "accuracy" in result.stdout and "per-class recall" in result.stdout
    assert (tmp_path / "cm.png").read_bytes()[:4] == b"\x89PNG"
    folder = tmp_path / "faces"
    folder.mkdir()
    shutil.copy(FACE_PNG, folder / "a.png")                           # a face crop: detected
    (folder / "b.jpg").write_bytes(b"")                                # zero bytes
    (folder / "c.png").write_bytes(open(FACE_PNG, "rb").read()[:200])  # truncated
    (folder / "d.txt").write_text("not an image")                      # skipped, not a failure
    import numpy as np
    import cv2
    cv2.imwrite(str(folder / "e.png"), np.full((200, 200, 3), 90, np.uint8))   # no face
    result = fer_tf("predict", folder, "--model", session_export, "--format", "jsonl")
    assert result.returncode == 1            # some files failed
    rows = [json.loads(l) for l in result.stdout.splitlines()]
    assert [os.path.basename(r["path"]) for r in rows] == ["a.png", "b.jpg", "c.png", "d.txt", "e.png"]
    assert rows[0]["error"] is None and len(rows[0]["probabilities"]) == 7
    assert rows[0]["label"] == max(rows[0]["probabilities"], key=rows[0]["probabilities"].get)
    assert rows[1]["error"] == "empty file" and "corrupt or truncated" in rows[2]["error"]
    assert rows[3]["note"].startswith("skipped") and rows[4]["note"] == "no face found"
    assert "2 image(s), 1 face(s), 2 file(s) failed" in result.stderr
    result = fer_tf("predict", FACE_PNG, "--model", session_export, "--format", "csv",
                    "--output", tmp_path / "out.csv")
    assert result.returncode == 0
    header, row = (tmp_path / "out.csv").read_text().splitlines()
    header, row = header.split(","), row.split(",")
    assert header[:9] == ["path", "frame", "face", "left", "top", "right", "bottom", "label",
                          "angry"] and header[-2:] == ["smile", "error"] and len(row) == 17
    # The bundled face smiles (the shipped smile model says 0.96): 1 - smile would fail.
    assert 0.8 < float(row[header.index("smile")]) <= 1


def test_vggface2_weights_flag_errors(sample_records, tmp_path):
    r224 = sample_records          # 48 px faces: decoded to 224 px; these flags fail before that
    assert_one_line_error(fer_tf("train", "--model", "vggface2", "--data", r224, "--model-dir",
                                 tmp_path / "m", "--vggface2-weights", tmp_path / "nope.h5"),
                          "--vggface2-weights", "nope.h5: no such file")
    assert_one_line_error(fer_tf("train", "--model", "vggface2", "--data", r224, "--model-dir",
                                 tmp_path / "m2"),
                          "--vggface2-weights PATH is required", "--allow-random-init")


def test_the_command_line_loads_tensorflow_without_pandas_and_pandas_still_imports_after():
    """Keras imports pandas only to fit DataFrames (0.3 s of a cold start); the CLI keeps it out
    while TensorFlow loads, and fer-tf's own uses (`to_pandas`) still import it."""
    code = ("import sys\nfrom fer_tf.core import logs\nlogs.setup(command_line=True)\n"
            "assert 'tensorflow' in sys.modules and 'pandas' not in sys.modules\n"
            "import pandas\nprint(pandas.DataFrame({'a': [1]}).shape)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "(1, 1)", out.stderr[-500:]


def test_the_command_line_loads_tensorflow_without_setuptools_and_puts_its_hook_back():
    """In a venv setuptools' start-up hook answers TensorFlow's `import distutils` by importing
    setuptools (0.1 s); the CLI lets Python's own distutils answer and restores the hook."""
    code = ("import sys\nhack = sys.modules.get('_distutils_hack')\n"
            "if getattr(hack, 'DISTUTILS_FINDER', None) not in sys.meta_path:\n"
            "    print('no hook'); sys.exit()\n"
            "from fer_tf.core import logs\nlogs.setup(command_line=True)\n"
            "assert 'tensorflow' in sys.modules and 'setuptools' not in sys.modules\n"
            "assert hack.DISTUTILS_FINDER in sys.meta_path\nprint('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    if out.stdout.strip() == "no hook":
        pytest.skip("setuptools' distutils hook is not installed in this environment")
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-500:]
