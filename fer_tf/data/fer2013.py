"""Streaming reader for Kaggle's fer2013.csv (plain or gzip) and Microsoft's FER+ votes.

fer2013.csv: header `emotion,pixels,Usage`; each row is a 48x48 grey face as 2,304 space-separated
integers, a label 0-6 (angry ... neutral) and a Usage (Training, PublicTest, PrivateTest).
fer2013new.csv: one row of 10 annotator votes per fer2013.csv row, joined by row position (its
`Image name` column drifts and repeats, so it is never used as a key).
"""
import csv
import dataclasses
import gzip
import io
import zlib

import numpy as np

from fer_tf.core import labels as label_sets
from fer_tf.core.errors import FerTfError

HEADER = ["emotion", "pixels", "Usage"]
FERPLUS_HEADER = ["Usage", "Image name", "neutral", "happiness", "surprise", "sadness", "anger",
                  "disgust", "fear", "contempt", "unknown", "NF"]
SIDE = 48
NUM_PIXELS = SIDE * SIDE
USAGES = ("Training", "PublicTest", "PrivateTest")
# The protocol: train on Training, select on PublicTest, report PrivateTest once.
USAGE_TO_SPLIT = {"Training": "train", "PublicTest": "eval", "PrivateTest": "test"}
NUM_VOTE_COLUMNS = len(FERPLUS_HEADER) - 2


@dataclasses.dataclass
class Face:
    row: int              # 0-based data row: the join key with FER+ and the record's source row
    line: int             # 1-based line in the csv, for messages
    image: np.ndarray     # uint8, 48x48
    label: int            # index into the label set in use
    usage: str
    votes: tuple = None   # FER+ votes (10 ints) when a FER+ file is given


@dataclasses.dataclass
class ReadStats:
    rows: int = 0
    bad_rows: int = 0
    ferplus_unknown_or_nf: int = 0
    ferplus_no_majority: int = 0
    bad_examples: list = dataclasses.field(default_factory=list)  # first few messages

    def to_json(self):
        return {"rows": self.rows, "bad_rows": self.bad_rows,
                "ferplus_dropped_unknown_or_nf": self.ferplus_unknown_or_nf,
                "ferplus_dropped_no_majority": self.ferplus_no_majority}


class BadRow(ValueError):
    """One row is malformed; the reader decides whether it stops the run or is skipped."""


def open_text(path):
    """Open plain or gzip text (detected by magic bytes, not the extension)."""
    try:
        raw = open(path, "rb")
    except FileNotFoundError:
        raise FerTfError(f"{path}: no such file; pass the path to fer2013.csv(.gz)") from None
    except (IsADirectoryError, PermissionError) as e:
        raise FerTfError(f"{path}: cannot read ({e.strerror}); pass a readable csv file") from None
    if raw.read(2) == b"\x1f\x8b":
        raw.seek(0)
        return io.TextIOWrapper(gzip.GzipFile(fileobj=raw), encoding="utf-8-sig", newline="")
    raw.seek(0)
    # utf-8-sig: a byte-order mark (as spreadsheet programs save csv) is read past, not data.
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def count_lines(path):
    """Data rows in a plain or gzip csv (lines after the header), for a progress total; None when
    the file cannot be read (the reader then reports why)."""
    try:
        with open(path, "rb") as raw:
            gz = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            stream = gzip.GzipFile(fileobj=raw) if gz else raw
            lines = last = 0
            for chunk in iter(lambda: stream.read(1 << 22), b""):
                lines += chunk.count(b"\n")
                last = chunk[-1]
            lines += last not in (0, ord("\n"))     # a last line without a newline
    except (OSError, EOFError, zlib.error):
        return None
    return max(0, lines - 1)


def _csv_rows(path, expected_header, what):
    """(line, row) for every data row; header checked; decoding problems become FerTfError."""
    try:
        with open_text(path) as text:
            reader = csv.reader(text)
            header = next(reader, None)
            if header is None:
                raise FerTfError(f"{path}: empty file; expected a {what} with header "
                                 f"{','.join(expected_header)}")
            if [h.strip() for h in header] != expected_header:
                raise FerTfError(f"{path}:1: header is {','.join(header)[:80]!r}, expected "
                                 f"{','.join(expected_header)!r}; is this a {what}?")
            for row in reader:
                yield reader.line_num, row
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError, zlib.error, csv.Error) as e:
        raise FerTfError(f"{path}: not a readable {what} ({type(e).__name__}: {e}); "
                         "check the file is complete and uncorrupted") from None


def parse_row(row):
    """Validate one fer2013.csv row -> (label, pixels uint8 48x48, usage); BadRow on any problem."""
    if len(row) != 3:
        raise BadRow(f"expected 3 columns (emotion,pixels,Usage), found {len(row)}")
    emotion, pixels, usage = row
    try:
        label = int(emotion)
    except ValueError:
        raise BadRow(f"emotion {emotion[:20]!r} is not an integer") from None
    if not 0 <= label < label_sets.FER7.num_classes:
        raise BadRow(f"emotion {label} is not a known label (0-6)")
    usage = usage.strip()
    if usage not in USAGES:
        raise BadRow(f"Usage {usage[:20]!r} is not one of {', '.join(USAGES)}")
    values = pixels.split()
    if len(values) != NUM_PIXELS:
        raise BadRow(f"pixels has {len(values)} values, expected {NUM_PIXELS} (48x48)")
    try:
        array = np.array(values, dtype=np.int32)
    except ValueError:
        bad = next(v for v in values if not v.lstrip("-").isdigit())
        raise BadRow(f"pixel value {bad[:20]!r} is not an integer") from None
    if array.min() < 0 or array.max() > 255:
        raise BadRow(f"pixel values must be in 0-255, found {array.min()}..{array.max()}")
    return label, array.astype(np.uint8).reshape(SIDE, SIDE), usage


def parse_votes(row):
    if len(row) != len(FERPLUS_HEADER):
        raise BadRow(f"expected {len(FERPLUS_HEADER)} columns, found {len(row)}")
    try:
        votes = tuple(int(v) for v in row[2:])
    except ValueError:
        raise BadRow("vote counts must be integers") from None
    if min(votes) < 0:
        raise BadRow("vote counts must be non-negative")
    return votes


FERPLUS_RULES = ("majority", "plurality")


def check_ferplus_rule(rule):
    if rule not in FERPLUS_RULES:
        raise FerTfError(f"--ferplus-rule must be one of {', '.join(FERPLUS_RULES)}, got {rule!r}")


def majority_label(votes, rule="majority"):
    """FER+ label from the 10 vote columns -> (label index in ferplus8 or None, why dropped).

    "majority" is the rule of Microsoft's FER+ reference code, the one published FER+ numbers use:
    single votes are discarded as outliers and the top emotion must hold more than half of the
    remaining votes. "plurality" keeps every face with a unique top vote (more faces, noisier).
    """
    if rule == "majority":
        votes = [v if v > 1 else 0 for v in votes]
    top = max(votes)
    winners = [i for i, v in enumerate(votes) if v == top]
    clear = top > 0.5 * sum(votes) if rule == "majority" else len(winners) == 1
    if top == 0 or not clear:
        return None, "no_majority"
    if winners[0] >= label_sets.FERPLUS8.num_classes:     # unknown or NF
        return None, "unknown_or_nf"
    return winners[0], None


def read_faces(path, ferplus_path=None, skip_bad=False, stats=None, ferplus_rule="majority"):
    """Yield validated Faces one at a time.

    Labels are FER2013's seven unless `ferplus_path` is given, in which case they are the FER+
    vote (eight classes, `majority_label`'s `ferplus_rule`) and rows without one are dropped and
    counted.
    A bad row raises FerTfError `file:line: problem` unless `skip_bad`, which counts it instead.
    """
    stats = stats if stats is not None else ReadStats()
    vote_rows = _csv_rows(ferplus_path, FERPLUS_HEADER, "FER+ fer2013new.csv") if ferplus_path else None
    for row_index, (line, row) in enumerate(_csv_rows(path, HEADER, "FER2013 csv")):
        stats.rows += 1
        votes = None
        if vote_rows is not None:
            vote_line, vote_row = next(vote_rows, (None, None))
            if vote_line is None:
                raise FerTfError(f"{ferplus_path}: ends before {path} (row {row_index}); FER+ "
                                 "labels join by row position, so both files need the same rows")
        try:
            label, image, usage = parse_row(row)
            if vote_rows is not None:
                try:
                    votes = parse_votes(vote_row)
                except BadRow as e:
                    raise BadRow(f"{e} (in {ferplus_path}:{vote_line})") from None
        except BadRow as e:
            message = f"{path}:{line}: {e}"
            if not skip_bad:
                raise FerTfError(message + "; fix the row or pass --skip-bad to skip bad rows") from None
            stats.bad_rows += 1
            if len(stats.bad_examples) < 5:
                stats.bad_examples.append(message)
            continue
        if votes is not None:
            label, why = majority_label(votes, ferplus_rule)
            if label is None:
                if why == "no_majority":
                    stats.ferplus_no_majority += 1
                else:
                    stats.ferplus_unknown_or_nf += 1
                continue
        yield Face(row_index, line, image, label, usage, votes)
    if vote_rows is not None and next(vote_rows, None) is not None:
        raise FerTfError(f"{ferplus_path}: has more rows than {path}; FER+ labels join by row "
                         "position, so both files need the same rows")


def stratified_splits(labels, seed, fractions=(0.8, 0.1, 0.1), names=("train", "eval", "test")):
    """Seeded, stratified assignment of each example to a split: per class, shuffle, then cut."""
    labels = np.asarray(labels)
    assignment = np.empty(len(labels), dtype=object)
    rng = np.random.RandomState(seed)
    bounds = np.cumsum(fractions)[:-1] / np.sum(fractions)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rng.shuffle(members)
        cuts = np.round(bounds * len(members)).astype(int)
        for name, part in zip(names, np.split(members, cuts)):
            assignment[part] = name
    return assignment
