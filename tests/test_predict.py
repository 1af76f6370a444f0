"""`fer-tf predict` on pictures: several faces, batching across files, video, annotation."""
import json

import cv2
import numpy as np
import pytest

from conftest import FACE_PNG
from fer_tf import predict, run


@pytest.fixture(scope="module")
def export(sample_records, tmp_path_factory):
    _, path = run.train("lenet7", sample_records, str(tmp_path_factory.mktemp("p") / "run"),
                        max_steps=2, log=lambda *_: None)
    return path


def face_scene(shift=0):
    """A 500x300 grey scene with two upscaled FER2013 faces (one mirrored)."""
    face = cv2.resize(cv2.imread(FACE_PNG, 0), (192, 192), interpolation=cv2.INTER_CUBIC)
    canvas = np.full((300, 500), 128, np.uint8)
    canvas[50 + shift:242 + shift, 20:212] = face
    canvas[60:252, 280:472] = cv2.flip(face, 1)
    return canvas


def test_several_faces_batched_across_files_in_order(export, tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"scene{i}.png"), face_scene(shift=i * 5))
    out = tmp_path / "out.jsonl"
    pictures, found, failed = predict.run([str(tmp_path)], export, "jsonl", str(out),
                                          batch_size=4, with_landmarks=True)
    assert (pictures, found, failed) == (3, 6, 0)
    rows = [json.loads(l) for l in out.read_text().splitlines()]
    assert [(r["path"].rsplit("/", 1)[1], r["face"]) for r in rows] == [
        (f"scene{i}.png", k) for i in range(3) for k in (0, 1)]
    assert all(len(r["landmarks"]) == 68 and len(r["probabilities"]) == 7 for r in rows)
    lefts = sorted(r["box"][0] for r in rows[:2])
    assert lefts[0] < 200 < lefts[1]                  # one face on each side


def test_video_frames_and_annotation(export, tmp_path):
    video = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"MJPG"), 10, (500, 300))
    for i in range(6):
        writer.write(cv2.cvtColor(face_scene(shift=i), cv2.COLOR_GRAY2BGR))
    writer.release()
    cv2.imwrite(str(tmp_path / "still.png"), face_scene())
    annotated = tmp_path / "annotated"
    out = tmp_path / "out.csv"
    pictures, found, failed = predict.run([video, str(tmp_path / "still.png")], export, "csv",
                                          str(out), annotate=str(annotated), stride=2)
    assert (pictures, failed) == (3 + 1, 0) and found == 8
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
    pictures, found, failed = predict.run([FACE_PNG], export, "jsonl", str(tmp_path / "o.jsonl"),
                                          detect=False)
    row = json.loads((tmp_path / "o.jsonl").read_text())
    assert (pictures, found, failed) == (1, 1, 0) and row["box"] == [0, 0, 48, 48]


def test_unopenable_video_and_missing_webcam(export, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 1000)
    pictures, found, failed = predict.run([str(bad), "7"], export, "jsonl", str(tmp_path / "o.jsonl"))
    rows = [json.loads(l) for l in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert failed == 2 and pictures == 0
    assert "cannot open video" in rows[0]["error"] and rows[1]["error"] == "cannot open webcam 7"
