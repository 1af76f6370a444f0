"""The FER2013 / FER+ reader: validation by line, skipping, FER+ majority vote, splits."""
import gzip

import numpy as np
import pytest

from conftest import SAMPLE_CSV, SAMPLE_FERPLUS, random_pixels, sample_rows, write_csv
from fer_tf.data import fer2013
from fer_tf.core.errors import FerTfError


def read_all(path, **kw):
    return list(fer2013.read_faces(path, **kw))


def test_sample_reads_all_rows_with_kaggle_labels():
    faces = read_all(SAMPLE_CSV)
    rows = sample_rows()
    assert len(faces) == len(rows) == 308
    assert [f.label for f in faces] == [int(r[0]) for r in rows]
    assert faces[5].image.shape == (48, 48) and faces[5].image.dtype == np.uint8
    assert faces[5].image.ravel().tolist() == [int(v) for v in rows[5][1].split()]
    assert {f.usage for f in faces} == set(fer2013.USAGES)


@pytest.mark.parametrize("row, message", [
    (("7", "GOOD", "Training"), "emotion 7 is not a known label"),
    (("x", "GOOD", "Training"), "is not an integer"),
    (("3", "GOOD", "Validation"), "Usage 'Validation' is not one of"),
    (("3", "1 " * 2303, "Training"), "pixels has 2303 values, expected 2304"),
    (("3", "256 " + "0 " * 2303, "Training"), "pixel values must be in 0-255"),
    (("3", "0 " * 2303 + "-5", "Training"), "pixel values must be in 0-255, found -5..0"),
    (("3", "17 " * 1000 + "-1 " + "17 " * 1303, "Training"), "found -1..17"),
    (("3", "a " + "0 " * 2303, "Training"), "pixel value 'a' is not an integer"),
    (("3", "GOOD"), "expected 3 columns"),
])
def test_bad_row_names_file_and_line(tmp_path, rng, row, message):
    good = ("3", random_pixels(rng), "Training")
    bad = tuple(random_pixels(rng) if c == "GOOD" else c for c in row)
    path = write_csv(tmp_path / "f.csv", [good, good, bad, good])
    with pytest.raises(FerTfError) as err:
        read_all(str(path))
    text = str(err.value)
    assert text.startswith(f"{path}:4: ")           # header is line 1, the bad row line 4
    assert message in text and "--skip-bad" in text


def test_skip_bad_counts_and_carries_on(tmp_path, rng):
    good = ("3", random_pixels(rng), "Training")
    rows = [good, ("9", random_pixels(rng), "Training"), good, ("1", "1 2 3", "PublicTest"), good]
    stats = fer2013.ReadStats()
    faces = read_all(str(write_csv(tmp_path / "f.csv", rows)), skip_bad=True, stats=stats)
    assert len(faces) == 3 and stats.bad_rows == 2 and stats.rows == 5
    assert [f.row for f in faces] == [0, 2, 4]
    assert ":3: " in stats.bad_examples[0] and ":5: " in stats.bad_examples[1]


def test_gzip_detected_by_content_not_extension(tmp_path):
    path = tmp_path / "plain_name.csv"
    path.write_bytes(gzip.open(SAMPLE_CSV).read())
    assert len(read_all(str(path))) == 308          # plain text under a .csv name
    gz = tmp_path / "gz_without_extension"
    gz.write_bytes(open(SAMPLE_CSV, "rb").read())
    assert len(read_all(str(gz))) == 308


@pytest.mark.parametrize("content, message", [
    (b"", "empty file"),
    (b"label,image,split\n1,2,3\n", "header is"),
    (bytes(range(256)) * 20, "not a readable FER2013 csv"),
])
def test_garbled_files(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(FerTfError, match=message):
        read_all(str(path))


def test_truncated_gzip_is_reported(tmp_path):
    data = open(SAMPLE_CSV, "rb").read()
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FerTfError, match="not a readable FER2013 csv"):
        read_all(str(path))


def test_missing_file():
    with pytest.raises(FerTfError, match="no such file"):
        read_all("/nonexistent/fer2013.csv")


@pytest.mark.parametrize("votes, rule, expected", [
    ((4, 0, 0, 1, 3, 2, 0, 0, 0, 0), "plurality", (0, None)),
    # Microsoft's rule drops the single sadness vote: 4 of 9 is still not more than half.
    ((4, 0, 0, 1, 3, 2, 0, 0, 0, 0), "majority", (None, "no_majority")),
    ((6, 0, 1, 1, 0, 0, 0, 0, 2, 0), "majority", (0, None)),        # 6 of 8 after outliers
    ((5, 0, 0, 3, 1, 0, 0, 0, 1, 0), "majority", (0, None)),        # 5 of 8: singles ignored
    ((0, 0, 0, 0, 0, 0, 0, 6, 4, 0), "majority", (7, None)),        # contempt
    ((5, 5, 0, 0, 0, 0, 0, 0, 0, 0), "plurality", (None, "no_majority")),
    ((5, 5, 0, 0, 0, 0, 0, 0, 0, 0), "majority", (None, "no_majority")),
    ((2, 0, 0, 0, 0, 0, 0, 0, 8, 0), "majority", (None, "unknown_or_nf")),
    ((0, 0, 0, 0, 0, 0, 0, 0, 0, 10), "plurality", (None, "unknown_or_nf")),
    ((1, 1, 1, 1, 1, 1, 1, 1, 1, 1), "majority", (None, "no_majority")),
    ((0,) * 10, "plurality", (None, "no_majority")),
])
def test_ferplus_majority_vote(votes, rule, expected):
    assert fer2013.majority_label(votes, rule) == expected


def test_ferplus_join_by_row_position():
    stats = fer2013.ReadStats()
    faces = read_all(SAMPLE_CSV, ferplus_path=SAMPLE_FERPLUS, stats=stats)
    with open(SAMPLE_FERPLUS) as f:
        next(f)
        vote_rows = [tuple(int(v) for v in line.strip().split(",")[2:]) for line in f]
    assert len(faces) + stats.ferplus_no_majority + stats.ferplus_unknown_or_nf == 308
    assert stats.ferplus_no_majority > 0 and stats.ferplus_unknown_or_nf > 0
    for face in faces:
        assert face.votes == vote_rows[face.row]
        assert face.label == int(np.argmax(face.votes))
        kept = [v for v in face.votes if v > 1]
        assert face.votes[face.label] > sum(kept) / 2
    # The plurality rule keeps a superset of the majority faces.
    plurality = read_all(SAMPLE_CSV, ferplus_path=SAMPLE_FERPLUS, ferplus_rule="plurality")
    assert {f.row for f in faces} < {f.row for f in plurality}


def test_ferplus_shorter_than_fer_is_an_error(tmp_path):
    short = tmp_path / "short.csv"
    short.write_text("".join(open(SAMPLE_FERPLUS).readlines()[:10]))
    with pytest.raises(FerTfError, match="ends before"):
        read_all(SAMPLE_CSV, ferplus_path=str(short))


def test_stratified_split_is_seeded_and_stratified():
    labels = np.repeat(np.arange(7), [400, 50, 300, 700, 200, 100, 250])
    a = fer2013.stratified_splits(labels, seed=3)
    assert (a == fer2013.stratified_splits(labels, seed=3)).all()
    assert not (a == fer2013.stratified_splits(labels, seed=4)).all()
    for k in range(7):
        members = a[labels == k]
        n = len(members)
        assert abs((members == "train").sum() - 0.8 * n) <= 1
        assert abs((members == "eval").sum() - 0.1 * n) <= 1
        assert abs((members == "test").sum() - 0.1 * n) <= 1
