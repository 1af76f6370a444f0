"""`fer-tf predict` on pictures: several faces, batching across files, video, annotation,
streaming output and Ctrl-C."""
import json
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from conftest import FACE_PNG
from fer_tf.apps import analyzer, predict
from fer_tf.serving import exported


@pytest.fixture
def export(lenet_export):
    return lenet_export


def count_calls(monkeypatch):
    """Count the model calls predict makes (the real call still runs)."""
    calls = []
    original = exported.ExportedModel.predict_faces_and_smiles     # predict_faces calls it too

    def counted(self, faces):
        calls.append(len(faces))
        return original(self, faces)

    monkeypatch.setattr(exported.ExportedModel, "predict_faces_and_smiles", counted)
    return calls


def face_scene(shift=0):
    """A 500x300 grey scene with two upscaled FER2013 faces (one mirrored)."""
    face = cv2.resize(cv2.imread(FACE_PNG, 0), (192, 192), interpolation=cv2.INTER_CUBIC)
    canvas = np.full((300, 500), 128, np.uint8)
    canvas[50 + shift:242 + shift, 20:212] = face
    canvas[60:252, 280:472] = cv2.flip(face, 1)
    return canvas


def test_several_faces_batched_across_files_in_order(export, tmp_path, monkeypatch):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"scene{i}.png"), face_scene(shift=i * 5))
    out = tmp_path / "out.jsonl"
    calls = count_calls(monkeypatch)
    summary = predict.run([str(tmp_path)], export, "jsonl", str(out), batch_size=4,
                          with_landmarks=True)
    assert (summary.images, summary.faces, summary.failed) == (3, 6, 0)
    assert calls == [4, 2]                 # ceil(6 faces / batch 4) calls, not one per file
    rows = [json.loads(l) for l in out.read_text().splitlines()]
    assert [(r["path"].rsplit("/", 1)[1], r["face"]) for r in rows] == [
        (f"scene{i}.png", k) for i in range(3) for k in (0, 1)]
    assert all(len(r["landmarks"]) == 68 and len(r["probabilities"]) == 7 for r in rows)
    lefts = sorted(r["box"][0] for r in rows[:2])
    assert lefts[0] < 200 < lefts[1]                  # one face on each side


def face_clip(path, frames):
    """An MJPG clip of `frames` face scenes, the first face moving down a pixel a frame."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (500, 300))
    for i in range(frames):
        writer.write(cv2.cvtColor(face_scene(shift=i), cv2.COLOR_GRAY2BGR))
    writer.release()
    return str(path)


def test_video_frames_and_annotation(export, tmp_path):
    video = face_clip(tmp_path / "clip.avi", 6)
    cv2.imwrite(str(tmp_path / "still.png"), face_scene())
    annotated = tmp_path / "annotated"
    out = tmp_path / "out.csv"
    summary = predict.run([video, str(tmp_path / "still.png")], export, "csv",
                          str(out), annotate=str(annotated), stride=2)
    assert (summary.images, summary.frames, summary.failed, summary.faces) == (1, 3, 0, 8)
    assert str(summary) == "1 image(s), 3 video frame(s), 8 face(s)"
    lines = out.read_text().splitlines()
    assert [l.split(",")[1] for l in lines[1:7]] == ["0", "0", "2", "2", "4", "4"]
    clip = cv2.VideoCapture(str(annotated / "clip.mp4"))
    frames = 0
    while clip.read()[0]:
        frames += 1
    assert frames == 3
    drawn = cv2.imread(str(annotated / "still.png"))
    assert drawn.shape == (300, 500, 3)
    assert not np.array_equal(drawn, cv2.cvtColor(face_scene(), cv2.COLOR_GRAY2BGR))


def test_no_detect_takes_crops(export, tmp_path):
    summary = predict.run([FACE_PNG], export, "jsonl", str(tmp_path / "o.jsonl"), detect=False)
    row = json.loads((tmp_path / "o.jsonl").read_text())
    assert (summary.images, summary.faces, summary.failed) == (1, 1, 0)
    assert row["box"] == [0, 0, 48, 48]


def test_unopenable_video_and_missing_webcam(export, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 1000)
    summary = predict.run([str(bad), "7"], export, "jsonl", str(tmp_path / "o.jsonl"))
    rows = [json.loads(l) for l in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert summary.failed == 2 and summary.images == summary.frames == 0
    assert "cannot open video" in rows[0]["error"] and rows[1]["error"] == "cannot open webcam 7"


def test_same_name_in_two_folders_gets_two_annotations(export, tmp_path):
    for folder, shift in (("a", 0), ("b", 20)):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / "x.png"), face_scene(shift=shift))
    ann = tmp_path / "ann"
    predict.run([str(tmp_path / "a" / "x.png"), str(tmp_path / "b" / "x.png")], export,
                annotate=str(ann))
    first, second = cv2.imread(str(ann / "a" / "x.png")), cv2.imread(str(ann / "b" / "x.png"))
    assert first is not None and second is not None and not np.array_equal(first, second)


def test_rows_are_written_as_pictures_complete(export, tmp_path, monkeypatch):
    """A failure after the first picture keeps that picture's row in --output."""
    cv2.imwrite(str(tmp_path / "1.png"), face_scene())
    cv2.imwrite(str(tmp_path / "2.png"), face_scene())
    original = analyzer.Analyzer.add
    seen = []

    def add_then_fail(self, item, rgb, keep_image=False):
        if seen:
            raise RuntimeError("disk went away")
        seen.append(item)
        return original(self, item, rgb, keep_image) + self.finish()

    monkeypatch.setattr(analyzer.Analyzer, "add", add_then_fail)
    out = tmp_path / "out.jsonl"
    with pytest.raises(RuntimeError):
        predict.run([str(tmp_path / "1.png"), str(tmp_path / "2.png")], export, "jsonl", str(out))
    rows = [json.loads(l) for l in out.read_text().splitlines()]
    assert [os.path.basename(r["path"]) for r in rows] == ["1.png", "1.png"]
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".")]


def test_ctrl_c_keeps_completed_rows_and_leaves_no_temporary_file(export, tmp_path):
    video = str(tmp_path / "long.avi")
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"MJPG"), 10, (500, 300))
    for i in range(400):
        writer.write(cv2.cvtColor(face_scene(shift=i % 10), cv2.COLOR_GRAY2BGR))
    writer.release()
    out, ann = tmp_path / "out.jsonl", tmp_path / "ann"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(
        [sys.executable, "-m", "fer_tf.apps.cli", "predict", video, "--model", export, "--format",
         "jsonl", "--output", str(out), "--annotate", str(ann)],
        stderr=subprocess.PIPE, text=True, env=env,
        # A shell running this suite in the background ignores SIGINT in its children; a user's
        # terminal does not: restore the default so Python turns SIGINT into KeyboardInterrupt.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # Wait for an observable event: the first completed rows in the (hidden) partial output.
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
        partial = [f for f in os.listdir(tmp_path) if f.startswith(".out.jsonl.")]
        if partial and os.path.getsize(tmp_path / partial[0]) > 0:
            break
        time.sleep(0.2)
    assert process.poll() is None, process.stderr.read()
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    rows = [json.loads(l) for l in out.read_text().splitlines()]
    assert 0 < len(rows) < 800 * 2
    assert [r["frame"] for r in rows[::2]] == list(range(len(rows) // 2))    # two faces a frame
    leftovers = [f for d in (tmp_path, ann) for f in os.listdir(d) if f.startswith(".")
                 and f != ".fer_tf_annotations"]
    assert not leftovers
    clip = cv2.VideoCapture(str(ann / "long.mp4"))
    assert clip.isOpened() and clip.read()[0]


@pytest.mark.parametrize("fmt", ["csv", "table"])
def test_landmarks_in_every_format(export, tmp_path, fmt):
    cv2.imwrite(str(tmp_path / "s.png"), face_scene())
    out = tmp_path / f"out.{fmt}"
    predict.run([str(tmp_path / "s.png")], export, fmt, str(out), with_landmarks=True)
    text = out.read_text()
    if fmt == "csv":
        header, *rows = text.splitlines()
        assert header.endswith(",landmarks") and len(rows) == 2
        import csv as csv_module
        for row in csv_module.reader(rows):
            assert len(json.loads(row[-1])) == 68
    else:
        lines = [line for line in text.splitlines() if line.strip().startswith("landmarks:")]
        assert len(lines) == 2 and all(len(line.split()) == 69 for line in lines)


def test_annotation_marks_a_picture_without_a_face(export, tmp_path):
    blank = np.full((120, 160, 3), 90, np.uint8)
    cv2.imwrite(str(tmp_path / "blank.png"), blank)
    predict.run([str(tmp_path / "blank.png")], export, annotate=str(tmp_path / "ann"))
    drawn = cv2.imread(str(tmp_path / "ann" / "blank.png"))
    assert (np.abs(drawn.astype(int) - 90).sum(axis=2) > 60).sum() > 50   # "no face found" drawn
