"""`fer-tf predict`'s own work around the engine, with the stand-in model and face pipeline of
tests/test_engine.py (no network runs): which paths become pictures, the rows written for
faces, empty pictures, skipped and unreadable files, videos and webcams, the summary and exit
status, the engine's options, annotation and --output's temporary file. Seconds: the selection
`make mutation` runs against each mutant of apps/predict.py."""
import argparse
import json
import os

import cv2
import numpy as np
import pytest

from fer_tf.apps import analyzer, predict
from fer_tf.apps.analyzer import Analyzer
from fer_tf.core.errors import FerTfError
from fer_tf.core.labels import FER7

import test_engine

stand_ins = test_engine.stand_ins           # the fixture: the stand-in model and face pipeline


@pytest.fixture
def engines(stand_ins, monkeypatch):
    """predict.run's Analyzer, built on the stand-ins; records the options run gave it."""
    made = []

    def stand_in_analyzer(model_path, **options):
        made.append({"model": model_path, **options})
        return Analyzer(model=stand_ins, smile=False, landmarks=None,
                        batch_size=options["batch_size"], workers=options["workers"])

    monkeypatch.setattr(analyzer, "Analyzer", stand_in_analyzer)
    return made


def picture(path, level, size=8):
    """A PNG whose first pixel is `level`: the stand-in pipeline finds level % 3 faces in it,
    labelled FER7[(level + j) % 7]."""
    cv2.imwrite(str(path), np.full((size, size, 3), level, np.uint8))
    return str(path)


def video(path, levels, size=16):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 10, (size, size))
    for level in levels:
        writer.write(np.full((size, size, 3), level, np.uint8))
    writer.release()
    return str(path)


def jsonl(path):
    return [json.loads(line) for line in open(path, encoding="utf-8").read().splitlines()]


def test_paths_become_pictures_folders_walked_in_order(tmp_path):
    for name in ("b/z.PNG", "b/a.txt", "a/clip.MP4", "a/c/d.jpeg", "top.webp", "noext"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "5").write_bytes(b"")
    root = str(tmp_path)
    assert predict.expand_paths([root]) == [
        ("other", f"{root}/5"),
        ("other", f"{root}/noext"), ("image", f"{root}/top.webp"),
        ("video", f"{root}/a/clip.MP4"), ("image", f"{root}/a/c/d.jpeg"),
        ("other", f"{root}/b/a.txt"), ("image", f"{root}/b/z.PNG")]
    # A path given by name is an image unless its extension says video; digits that name no
    # file are a webcam; a file named with digits is a file.
    assert predict.expand_paths(["x.avi", "y.dat", "0", "12", f"{root}/5", "x.MKV"]) == [
        ("video", "x.avi"), ("image", "y.dat"), ("webcam", "0"), ("webcam", "12"),
        ("image", f"{root}/5"), ("video", "x.MKV")]
    assert predict.expand_paths([]) == []


def test_pictures_read_from_files(tmp_path):
    assert list(predict.read_pictures("other", "notes.txt")) == [(None, None, None)]
    [(frame, rgb, error)] = predict.read_pictures("image", picture(tmp_path / "a.png", 9))
    assert frame is None and error is None and rgb.shape == (8, 8, 3) and rgb[0, 0, 0] == 9
    (tmp_path / "bad.jpg").write_bytes(b"not a picture")
    [(frame, rgb, error)] = predict.read_pictures("image", str(tmp_path / "bad.jpg"))
    assert frame is None and rgb is None and error == "not a readable image"
    clip = video(tmp_path / "v.avi", [1, 2, 3, 4, 5, 6, 7])
    frames = list(predict.read_pictures("video", clip, stride=2, max_frames=3))
    assert [(f, rgb[0, 0, 0], e) for f, rgb, e in frames] == [(0, 1, None), (2, 3, None),
                                                               (4, 5, None)]
    assert [f for f, _, _ in predict.read_pictures("video", clip)] == list(range(7))


def test_rows_for_faces_empty_pictures_skipped_and_unreadable_files(engines, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    picture(folder / "a.png", 2)                      # two faces
    picture(folder / "b.png", 3)                      # none
    (folder / "c.jpg").write_bytes(b"broken")         # unreadable
    (folder / "d.txt").write_text("notes")            # not a picture
    picture(folder / "e.png", 4)                      # one face
    out = tmp_path / "out.jsonl"
    summary = predict.run([str(folder)], "the model", "jsonl", str(out), batch_size=2)
    rows = jsonl(out)
    assert [(os.path.basename(r["path"]), r["frame"], r["face"], r.get("label"), r["error"],
             r.get("note")) for r in rows] == [
        ("a.png", None, 0, "fear", None, None), ("a.png", None, 1, "happy", None, None),
        ("b.png", None, None, None, None, "no face found"),
        ("c.jpg", None, None, None, rows[3]["error"], None),
        ("d.txt", None, None, None, None, "skipped: not an image or video file"),
        ("e.png", None, 0, "sad", None, None)]
    assert rows[3]["error"] == "not a readable image"
    assert rows[0]["box"] == [0.3, 0, 2, 2] and rows[1]["box"] == [1.3, 0, 3, 2]
    assert (summary.images, summary.frames, summary.faces, summary.failed) == (3, 0, 3, 1)
    assert str(summary) == "3 image(s), 3 face(s), 1 file(s) failed"
    assert sorted(os.listdir(tmp_path)) == ["in", "out.jsonl"]    # no temporary file left
    assert [os.path.basename(r["path"]) for r in rows if r["face"] in (None, 0)] == [
        "a.png", "b.png", "c.jpg", "d.txt", "e.png"]


def test_video_frames_are_counted_and_rowed(engines, tmp_path, capsys):
    clip = video(tmp_path / "v.avi", [1, 2, 3, 4, 5])
    summary = predict.run([clip], None, "jsonl", stride=2)
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["frame"], r["face"]) for r in rows] == [(0, 0), (2, None), (4, 0), (4, 1)]
    assert (summary.images, summary.frames, summary.faces, summary.failed) == (0, 3, 3, 0)
    assert str(summary) == "0 image(s), 3 video frame(s), 3 face(s)"
    summary = predict.run([clip], None, "jsonl", max_frames=2)
    assert summary.frames == 2
    capsys.readouterr()
    (tmp_path / "empty.avi").write_bytes(b"")
    summary = predict.run([str(tmp_path / "empty.avi")], None, "jsonl")
    assert summary.failed == 1 and summary.frames == 0
    [row] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["error"] == "cannot open video (unreadable or unsupported codec)"


def test_a_webcam_is_classified_frame_by_frame(engines, monkeypatch, capsys):
    written_before = []

    def frames(source, stride=1, max_frames=None):
        assert source == "7"
        for index, level in enumerate([1, 4]):
            written_before.append(capsys.readouterr().out.count("\n"))
            yield index, np.full((8, 8, 3), level, np.uint8), None

    monkeypatch.setattr(analyzer, "read_frames", frames)
    predict.run(["7"], None, "jsonl", batch_size=64)
    assert written_before == [0, 1]      # frame 0's row was out before frame 1 was read
    # A file is batched: nothing is written before the last picture is read.
    written_before.clear()
    capsys.readouterr()
    monkeypatch.setattr(predict, "expand_paths", lambda paths: [("video", "7")])
    predict.run(["7"], None, "jsonl", batch_size=64)
    assert written_before == [0, 0]


def test_the_engine_gets_the_options_run_was_given(engines, tmp_path):
    one = picture(tmp_path / "one.png", 1)
    predict.run([one], "m", "jsonl", str(tmp_path / "o1"))
    predict.run([one, one], "m", "jsonl", str(tmp_path / "o2"), detect=False, upsample=2,
                with_landmarks=True, landmarks="dlib", detector="dlib", smile=True, workers=2,
                align_points=5, precision="bf16", batch_size=3, landmarks_model="lm")
    predict.run([str(tmp_path)], "m", "jsonl", str(tmp_path / "o3"), landmarks="cnn")
    predict.run([video(tmp_path / "v.avi", [1])], "m", "jsonl", str(tmp_path / "o4"))
    first, second, third, fourth = engines
    assert first == {"model": "m", "smile": False, "landmarks": None, "landmarks_model": None,
                     "detector": "blazeface_auto", "detect": True, "upsample": None,
                     "batch_size": 64, "workers": 1, "align_points": 68, "optimize": False,
                     "precision": "auto", "report_landmarks": False}
    assert second == {"model": "m", "smile": True, "landmarks": "dlib", "landmarks_model": "lm",
                      "detector": "dlib", "detect": False, "upsample": 2, "batch_size": 3,
                      "workers": 2, "align_points": 5, "optimize": True, "precision": "bf16",
                      "report_landmarks": True}
    # The CNN places the points that align, so it runs even when they are not reported; a
    # folder is not one photo.
    assert (third["landmarks"], third["report_landmarks"], third["optimize"]) == ("cnn", False,
                                                                                  True)
    assert fourth["optimize"] is True                  # one video is many pictures


def test_nothing_to_read_is_refused(engines, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FerTfError, match=r"^.*empty: no images or videos found$"):
        predict.run([str(empty)], "m")
    assert not engines                       # refused before any model is loaded


def test_annotated_pictures_and_videos(engines, tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    picture(folder / "sub" / "a.png", 2, size=64)
    (folder / "b.webp").write_bytes(cv2.imencode(".webp", np.full((64, 64, 3), 4, np.uint8))[1])
    video(folder / "v1.avi", [1, 2, 4], size=64)
    video(folder / "v2.avi", [2, 5], size=64)
    annotated = tmp_path / "annotated"
    predict.run([str(folder)], None, "jsonl", str(tmp_path / "rows.jsonl"), annotate=str(annotated))
    made = sorted(os.path.relpath(os.path.join(root, name), annotated)
                  for root, _, names in os.walk(annotated) for name in names)
    assert made == [".fer_tf_annotations", "b.png", "sub/a.png", "v1.mp4", "v2.mp4"]
    for name, frames in (("v1.mp4", 3), ("v2.mp4", 2)):
        capture = cv2.VideoCapture(str(annotated / name))
        assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == frames
    assert cv2.imread(str(annotated / "sub" / "a.png")).shape == (64, 64, 3)


def test_a_video_is_published_when_the_next_input_starts(engines, tmp_path, monkeypatch):
    """Given in any order, each annotated video is closed and renamed into place as soon as
    the next input's first picture is drawn, not only at the end of the run."""
    from fer_tf.apps import annotate
    later = video(tmp_path / "later.avi", [1, 2], size=64)
    first = video(tmp_path / "first.avi", [2, 4], size=64)
    still = picture(tmp_path / "still.png", 1, size=64)
    published, original = [], annotate.Annotator.add

    def add(self, item):
        published.append((os.path.basename(item.source), item.frame,
                          sorted(n for n in os.listdir(self.out_dir) if not n.startswith("."))))
        original(self, item)

    monkeypatch.setattr(annotate.Annotator, "add", add)
    predict.run([later, first, still], None, "jsonl", str(tmp_path / "rows.jsonl"),
                annotate=str(tmp_path / "annotated"))
    assert published == [("later.avi", 0, []), ("later.avi", 1, []),
                         ("first.avi", 0, ["later.mp4"]), ("first.avi", 1, ["later.mp4"]),
                         ("still.png", None, ["first.mp4", "later.mp4"])]


def test_summary_text_and_exit_status(engines, tmp_path, capsys):
    assert str(predict.Summary()) == "0 image(s), 0 face(s)"
    assert str(predict.Summary(images=2, frames=5, faces=7, failed=1)) == \
        "2 image(s), 5 video frame(s), 7 face(s), 1 file(s) failed"
    good = picture(tmp_path / "good.png", 1)
    (tmp_path / "bad.png").write_bytes(b"")
    args = argparse.Namespace(
        paths=[good], model=None, format="csv", output=None, annotate=None, no_detect=False,
        upsample=None, with_landmarks=False, video_stride=1, max_frames=None, landmarks="dlib",
        landmarks_model=None, detector="blazeface", no_smile=True, workers=None, align=68,
        precision="auto")
    assert predict.main(args) == 0
    assert capsys.readouterr().err == "fer-tf predict: 1 image(s), 1 face(s)\n"
    assert engines[-1]["smile"] is False and engines[-1]["detect"] is True
    args.paths, args.no_detect, args.no_smile = [good, str(tmp_path / "bad.png")], True, False
    assert predict.main(args) == 1
    assert capsys.readouterr().err == \
        "fer-tf predict: 1 image(s), 1 face(s), 1 file(s) failed\n"
    assert engines[-1]["smile"] is True and engines[-1]["detect"] is False


def test_default_workers(monkeypatch):
    for cores, blazeface in ((1, 1), (2, 2), (16, 2), (None, 1)):
        monkeypatch.setattr(os, "cpu_count", lambda: cores)
        assert predict.default_workers("blazeface_auto") == blazeface
        assert predict.default_workers("blazeface") == blazeface
        assert predict.default_workers("dlib") == 1


def test_labels_come_from_the_model(engines, tmp_path):
    out = tmp_path / "rows.csv"
    predict.run([picture(tmp_path / "p.png", 5)], None, "csv", str(out))
    header, *lines = out.read_text().splitlines()
    assert header.split(",")[:7] == ["path", "frame", "face", "left", "top", "right", "bottom"]
    assert [line.split(",")[2] for line in lines] == ["0", "1"]
    assert FER7.classes[5] in lines[0] and FER7.classes[6] in lines[1]


def test_flags_from_the_command_line_are_compared_by_value(engines, tmp_path):
    """The format and landmark flags arrive as strings built from sys.argv, not the literals in
    the code: each gives what its literal gives."""
    image = picture(tmp_path / "p.png", 2)

    def from_argv(text):
        return "".join(list(text))               # equal, but not the same object

    for fmt in ("csv", "table", "jsonl"):
        assert from_argv(fmt) is not fmt
        predict.run([image], None, fmt, str(tmp_path / f"literal.{fmt}"))
        predict.run([image], None, from_argv(fmt), str(tmp_path / f"argv.{fmt}"))
        assert (tmp_path / f"argv.{fmt}").read_text() == (tmp_path / f"literal.{fmt}").read_text()
    predict.run([image], None, "jsonl", str(tmp_path / "cnn.jsonl"), landmarks=from_argv("cnn"))
    assert engines[-1]["landmarks"] == "cnn"
