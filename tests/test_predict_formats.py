"""`fer-tf predict`'s rows and its three formats, byte for byte, from results built here (no
model is run): the csv columns in order, the table's text, the jsonl fields, rounding, the rows
of files without a face, with an error or skipped — and that the columns come from the heads
(apps/heads.py), so a head that is absent leaves no column. tests/test_predict.py runs the real
command."""
import csv
import io
import dataclasses
import json
import types

import numpy as np
import pytest

from fer_tf.apps import heads, predict
from fer_tf.apps.analyzer import Face, Result
from fer_tf.core.errors import FerTfError

CLASSES = ("angry", "happy", "sad")


@pytest.fixture
def all_heads():
    model = types.SimpleNamespace(label_set=types.SimpleNamespace(classes=CLASSES))
    expression = heads.ExpressionHead(model)
    return (expression, heads.SmileHead(None, expression), heads.LandmarksHead())


def results(head_set):
    points = np.array([[10.04, 20.06], [30.5, 40.44]])
    face = Face(0, (1.0, 2.0, 30.0, 40.0), 0.9, classes=CLASSES, heads=head_set,
                probabilities=np.array([0.1234567, 0.8, 0.0765433]), smile=0.98765432,
                landmarks=points)
    other = Face(1, (50.0, 5.5, 80.0, 35.5), 0.8, classes=CLASSES, heads=head_set,
                 probabilities=np.array([0.5, 0.2, 0.3]), smile=0.25, landmarks=points)
    return [Result("a.jpg", faces=[face, other]), Result("b.png"),
            Result("c.jpg", error="not a readable image"), Result("d.txt", skipped=True),
            Result("v.mp4", frame=3, faces=[other])]


def written(fmt, head_set, tmp_path):
    out = tmp_path / f"out.{fmt}"
    writer = predict.Writer(fmt, CLASSES, str(out), [h for h in head_set if h.reported])
    for item in results(head_set):
        writer.write(item)
    writer.close()
    return out.read_text()


def test_csv_columns_cells_and_rows(all_heads, tmp_path):
    table = list(csv.reader(io.StringIO(written("csv", all_heads, tmp_path))))
    assert table[0] == ["path", "frame", "face", "left", "top", "right", "bottom", "label", "angry",
                        "happy", "sad", "smile", "error", "landmarks"]
    assert table[1] == ["a.jpg", "", "0", "1.0", "2.0", "30.0", "40.0", "happy", "0.123457",
                        "0.800000", "0.076543", "0.987654", "", "[[10.0, 20.1], [30.5, 40.4]]"]
    assert table[2][:12] == ["a.jpg", "", "1", "50.0", "5.5", "80.0", "35.5", "angry", "0.500000",
                             "0.200000", "0.300000", "0.250000"]
    assert table[3] == ["b.png", "", "", "", "", "", "", "", "", "", "", "", "no face found", ""]
    assert table[4] == ["c.jpg", "", "", "", "", "", "", "", "", "", "", "",
                        "not a readable image", ""]
    assert table[5][12] == "skipped: not an image or video file"
    assert table[6][:3] == ["v.mp4", "3", "1"] and len(table) == 7


def test_csv_without_smile_and_landmarks_has_no_such_columns(all_heads, tmp_path):
    text = written("csv", all_heads[:1], tmp_path)
    assert text.splitlines()[0] == "path,frame,face,left,top,right,bottom,label,angry,happy,sad,error"
    assert text.splitlines()[1] == "a.jpg,,0,1.0,2.0,30.0,40.0,happy,0.123457,0.800000,0.076543,"


def test_table_text(all_heads, tmp_path):
    lines = written("table", all_heads, tmp_path).splitlines()
    assert lines == [
        "# fer-tf predict: path [frame] face [left,top,right,bottom]: label (top three)",
        "a.jpg face 0 [1,2,30,40]: happy  (happy 0.80, angry 0.12, sad 0.08)  smile 0.99",
        "    landmarks: 10.0,20.1 30.5,40.4",
        "a.jpg face 1 [50,6,80,36]: angry  (angry 0.50, sad 0.30, happy 0.20)  smile 0.25",
        "    landmarks: 10.0,20.1 30.5,40.4",
        "b.png: no face found",
        "c.jpg: ERROR not a readable image",
        "d.txt: skipped: not an image or video file",
        "v.mp4 [frame 3] face 1 [50,6,80,36]: angry  (angry 0.50, sad 0.30, happy 0.20)  smile 0.25",
        "    landmarks: 10.0,20.1 30.5,40.4"]


def test_jsonl_fields(all_heads, tmp_path):
    rows = [json.loads(line) for line in written("jsonl", all_heads, tmp_path).splitlines()]
    assert rows[0] == {"path": "a.jpg", "frame": None, "face": 0, "box": [1.0, 2.0, 30.0, 40.0],
                       "label": "happy",
                       "probabilities": {"angry": 0.123457, "happy": 0.8, "sad": 0.076543},
                       "smile": 0.987654, "landmarks": [[10.0, 20.1], [30.5, 40.4]], "error": None}
    assert rows[2] == {"path": "b.png", "frame": None, "face": None, "error": None,
                       "note": "no face found"}
    assert rows[3] == {"path": "c.jpg", "frame": None, "face": None, "error": "not a readable image"}
    assert rows[5]["frame"] == 3 and rows[5]["face"] == 1


def test_jsonl_rows_read_back_as_the_rows_written(all_heads, tmp_path):
    lines = written("jsonl", all_heads, tmp_path).splitlines()
    back = [predict.Row.from_json(json.loads(line)) for line in lines]
    assert [json.dumps(row.to_json()) for row in back] == lines         # key order too
    assert [row.is_face for row in back] == [True, True, False, False, False, True]
    assert back[0].box == (1.0, 2.0, 30.0, 40.0) and back[0].values["smile"] == 0.987654
    assert list(back[0].values) == ["label", "probabilities", "smile", "landmarks"]
    assert back[4].note == "skipped: not an image or video file" and back[2].error is None
    assert back[3].error == "not a readable image" and back[2].note == "no face found"
    for not_a_row in ({"file": "a.jpg"}, {"path": "a.jpg"}, {"face": 0}, ["a.jpg", 0]):
        with pytest.raises(FerTfError, match=r"^not a fer-tf predict row \(needs path and face\)"):
            predict.Row.from_json(not_a_row)
    with pytest.raises(dataclasses.FrozenInstanceError):
        back[0].path = "elsewhere"                  # a row read is the row written


def test_unreported_landmarks_stay_out_of_rows_but_not_out_of_to_dict(all_heads, tmp_path):
    quiet = all_heads[:2] + (heads.LandmarksHead(reported=False),)
    text = written("csv", quiet, tmp_path)
    assert text.splitlines()[0].endswith(",smile,error")
    face = results(quiet)[0].faces[0]
    as_dict = face.to_dict()
    assert as_dict["landmarks"] == [[10.04, 20.06], [30.5, 40.44]]        # unrounded
    assert as_dict["smile"] == pytest.approx(0.98765432) and as_dict["score"] == 0.9
    assert list(as_dict) == ["face", "box", "score", "label", "probabilities", "smile", "landmarks"]


def test_dataframe_columns_come_from_the_heads(all_heads):
    from fer_tf.apps.analyzer import Results
    frame = Results(results(all_heads)).to_pandas()
    assert list(frame.columns) == ["source", "frame", "face", "left", "top", "right", "bottom",
                                   "score", "label", "angry", "happy", "sad", "smile", "error"]
    assert list(frame["label"][:2]) == ["happy", "angry"] and frame["smile"][1] == 0.25
    assert len(frame) == 6 and frame["error"][3] == "not a readable image"


def test_annotation_marks_come_from_the_heads(all_heads):
    from fer_tf.apps import annotate
    label_set = types.SimpleNamespace(classes=CLASSES, colours=("#ff0000", "#00ff00", "#0000ff"))
    face = Face(0, (20.0, 20.0, 80.0, 80.0), 0.9, classes=CLASSES, heads=all_heads,
                probabilities=np.array([0.1, 0.8, 0.1]), smile=0.5,
                landmarks=np.array([[50.0, 40.0]]))
    image = annotate.draw(np.full((200, 200, 3), 128, np.uint8), [face], label_set)   # BGR
    assert tuple(image[50, 20]) == (0, 255, 0)          # the box in the top class's colour
    # Bars under the box (scale 200/640: rows 9 px, 30 px wide), one per class, filled to p.
    happy_row = 80 + 3 + 1 * 10 + 4
    assert tuple(image[happy_row, 20 + 10]) == (0, 255, 0)
    assert tuple(image[happy_row, 20 + 27]) == (60, 60, 60)
    assert tuple(image[80 + 3 + 4, 20 + 1]) == (255, 0, 0)[::-1]     # angry 0.1: red, 3 px
    assert tuple(image[80 + 3 + 4, 20 + 5]) == (60, 60, 60)
    assert tuple(image[40, 50]) == (0, 255, 0)          # the landmark
    assert (image[5:18, 20:80] != 128).any()           # the caption above the box
    empty = annotate.draw(np.full((200, 200, 3), 128, np.uint8), [], label_set)
    reddish = (empty[..., 2] > 180) & (empty[..., 1] < 100) & (empty[..., 0] < 100)
    assert reddish[:20, :100].sum() > 20 and not reddish[30:].any()   # "no face found", in red


def test_captions(all_heads):
    face = Face(0, (0, 0, 1, 1), None, classes=CLASSES, heads=all_heads,
                probabilities=np.array([0.1, 0.8, 0.1]), smile=0.456)
    assert [h.caption(face) for h in all_heads] == ["happy 0.80", "  smile 0.46", ""]
    face.smile = None
    assert all_heads[1].caption(face) == "" and all_heads[1].fields(face) == {}
    assert all_heads[2].fields(face) == {} and all_heads[2].lines({}) == ""
