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


# ---- the cases a mutation run (cosmic-ray, docs/testing.md) showed untested ------------------
@pytest.mark.parametrize("content, expected", [
    (b"emotion,pixels,Usage\n1\n2\n3\n", 3),
    (b"emotion,pixels,Usage\n1\n2\n3", 3),         # no newline after the last row
    (b"emotion,pixels,Usage\n", 0),
    (b"emotion,pixels,Usage", 0),
    (b"", 0),
])
def test_count_lines_counts_data_rows(tmp_path, content, expected):
    plain = tmp_path / "plain.csv"
    plain.write_bytes(content)
    assert fer2013.count_lines(str(plain)) == expected
    packed = tmp_path / "packed.csv"                  # gzip, whatever the name says
    packed.write_bytes(gzip.compress(content))
    assert fer2013.count_lines(str(packed)) == expected


def test_count_lines_over_several_chunks_and_unreadable_files(tmp_path):
    big = tmp_path / "big.csv"
    row = b"3," + b"0 " * 2303 + b"0,Training\n"
    big.write_bytes(b"emotion,pixels,Usage\n" + row * 1000)     # 4.6 MB: two 4 MiB chunks
    assert fer2013.count_lines(str(big)) == 1000
    assert fer2013.count_lines(str(tmp_path / "missing.csv")) is None
    broken = tmp_path / "broken.csv.gz"
    broken.write_bytes(gzip.compress(b"a\nb\nc\n" * 1000)[:40])
    assert fer2013.count_lines(str(broken)) is None


@pytest.mark.parametrize("row, message", [
    (("x" * 30, "GOOD", "Training"), "emotion 'xxxxxxxxxxxxxxxxxxxx' is not an integer"),
    (("3", "GOOD", "U" * 30), "Usage 'UUUUUUUUUUUUUUUUUUUU' is not one of Training, PublicTest, PrivateTest"),
    (("3", "1" * 30 + "a " + "0 " * 2303, "Training"), "pixel value '11111111111111111111' is not"),
    (("3", "0 " * 2305, "Training"), "pixels has 2305 values, expected 2304 (48x48)"),
    (("3", "12a " + "0 " * 2303, "Training"), "pixel value '12a' is not an integer"),
])
def test_messages_quote_at_most_20_characters_and_name_the_rule(tmp_path, rng, row, message):
    bad = tuple(random_pixels(rng) if c == "GOOD" else c for c in row)
    path = write_csv(tmp_path / "f.csv", [bad])
    with pytest.raises(FerTfError) as err:
        read_all(str(path))
    assert f"{path}:2: {message}" in str(err.value)


def test_a_wrong_header_is_quoted_up_to_80_characters(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("a" * 100 + ",b\n1,2\n")
    with pytest.raises(FerTfError) as err:
        read_all(str(path))
    assert f"{path}:1: header is '{'a' * 80}', expected 'emotion,pixels,Usage'" in str(err.value)


def test_votes_are_validated_and_counted_by_reason(tmp_path, rng):
    good = ("3", random_pixels(rng), "Training")
    fer = write_csv(tmp_path / "fer.csv", [good] * 4)
    header = ",".join(fer2013.FERPLUS_HEADER)
    rows = ["Training,a.png,4,0,0,0,0,0,0,0,6,0",       # unknown wins (index 8)
            "Training,b.png,3,3,0,0,0,0,0,0,0,0",       # a tie: no majority
            "Training,c.png,1,1,1,1,1,1,1,1,1,1",       # every vote a single: no majority
            "Training,d.png,1,9,0,0,0,0,0,0,0,0"]       # happiness
    ferplus = tmp_path / "ferplus.csv"
    ferplus.write_text(header + "\n" + "\n".join(rows) + "\n")
    stats = fer2013.ReadStats()
    faces = read_all(str(fer), ferplus_path=str(ferplus), stats=stats)
    assert [(f.row, f.label) for f in faces] == [(3, 1)]
    assert (stats.ferplus_unknown_or_nf, stats.ferplus_no_majority) == (1, 2)
    assert stats.to_json() == {"rows": 4, "bad_rows": 0, "ferplus_dropped_unknown_or_nf": 1,
                               "ferplus_dropped_no_majority": 2}
    assert fer2013.NUM_VOTE_COLUMNS == 10
    assert fer2013.parse_votes(["Training", "x.png"] + ["2"] * 10) == (2,) * 10
    with pytest.raises(fer2013.BadRow, match="non-negative"):
        fer2013.parse_votes(["Training", "x.png"] + ["2"] * 9 + ["-1"])
    with pytest.raises(fer2013.BadRow, match="expected 12 columns, found 11"):
        fer2013.parse_votes(["Training", "x.png"] + ["2"] * 9)


def test_a_single_vote_wins_under_plurality_only():
    votes = (0, 0, 1, 0, 0, 0, 0, 0, 0, 0)
    assert fer2013.majority_label(votes, "plurality") == (2, None)
    assert fer2013.majority_label(votes, "majority") == (None, "no_majority")
    # --ferplus-rule majority from the command line: an equal string, not the literal itself.
    from_argv = "".join(list("majority"))
    assert fer2013.majority_label(votes, from_argv) == (None, "no_majority")
    assert fer2013.majority_label((0, 0, 4, 3, 0, 0, 0, 0, 0, 1), from_argv) == (2, None)
    assert fer2013.majority_label((0, 0, 4, 3, 3, 0, 0, 0, 0, 0), from_argv) == \
        (None, "no_majority")                     # a unique top, but not more than half


def test_skip_bad_keeps_five_examples(tmp_path, rng):
    good = ("3", random_pixels(rng), "Training")
    rows = [good] + [("9", random_pixels(rng), "Training")] * 7
    stats = fer2013.ReadStats()
    read_all(str(write_csv(tmp_path / "f.csv", rows)), skip_bad=True, stats=stats)
    assert stats.bad_rows == 7 and len(stats.bad_examples) == 5


def test_split_fractions_need_not_sum_to_one():
    labels = np.repeat(np.arange(2), [100, 200])
    a = fer2013.stratified_splits(labels, seed=0, fractions=(8, 1, 1))
    assert [(a[labels == k] == name).sum() for k in (0, 1) for name in ("train", "eval", "test")] \
        == [80, 10, 10, 160, 20, 20]
    b = fer2013.stratified_splits(labels, seed=0, fractions=(2, 2), names=("x", "y"))
    assert (b == "x").sum() == 150 and (b == "y").sum() == 150


def test_bad_vote_rows_name_both_files(tmp_path, rng):
    good = ("3", random_pixels(rng), "Training")
    fer = write_csv(tmp_path / "fer.csv", [good, good])
    header = ",".join(fer2013.FERPLUS_HEADER)
    ferplus = tmp_path / "ferplus.csv"
    ferplus.write_text(header + "\nTraining,a.png,1,9,0,0,0,0,0,0,0,0\nTraining,b.png,1,x,0,0,0,0,0,0,0,0\n")
    with pytest.raises(FerTfError) as err:
        read_all(str(fer), ferplus_path=str(ferplus))
    assert f"{fer}:3: vote counts must be integers (in {ferplus}:3)" in str(err.value)


def test_four_columns_are_refused_too(tmp_path, rng):
    path = write_csv(tmp_path / "f.csv", [("3", random_pixels(rng), "Training", "extra")])
    with pytest.raises(FerTfError, match="expected 3 columns \\(emotion,pixels,Usage\\), found 4"):
        read_all(str(path))


def test_a_plain_file_starting_with_a_control_byte_is_not_taken_for_gzip(tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes(b"\temotion,pixels,Usage\n1\n")
    assert fer2013.count_lines(str(path)) == 1
    with pytest.raises(FerTfError, match=":2: expected 3 columns"):     # read as text, header accepted
        read_all(str(path))


def test_more_vote_columns_a_folder_a_negative_emotion_and_an_unknown_rule(tmp_path, rng):
    with pytest.raises(fer2013.BadRow, match="expected 12 columns, found 13"):
        fer2013.parse_votes(["Training", "x.png"] + ["2"] * 11)
    with pytest.raises(FerTfError, match="cannot read"):
        read_all(str(tmp_path))
    path = write_csv(tmp_path / "f.csv", [("-1", random_pixels(rng), "Training")])
    with pytest.raises(FerTfError, match=":2: emotion -1 is not a known label \\(0-6\\)"):
        read_all(str(path))
    fer2013.check_ferplus_rule("plurality")
    with pytest.raises(FerTfError, match="--ferplus-rule must be one of majority, plurality, got 'mode'"):
        fer2013.check_ferplus_rule("mode")
