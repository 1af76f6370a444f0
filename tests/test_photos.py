"""The readers of a user's own labelled photos (fer_tf/data/photos.py), on files written here:
every layout rule, every problem message with its file or csv line, and what is kept. No image
is decoded (the converter does that; tests/test_own_photos.py runs it)."""
import os

import pytest

from fer_tf.core.errors import FerTfError
from fer_tf.data.photos import Photo, read_csv, read_folder


def touch(path, data=b"x"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "photos"
    touch(root / "happy" / "b.jpg")
    touch(root / "happy" / "a.PNG")                 # extension case does not matter
    touch(root / "happy" / "deeper" / "c.jpeg")     # any depth below the class folder
    touch(root / "happy" / ".hidden.jpg")           # hidden files: silently ignored
    touch(root / "happy" / "notes.txt")
    touch(root / "happy" / "z.jpg")                 # after a left-out file: still read
    touch(root / "sad" / "d.bmp")
    touch(root / "loose.jpg")                       # not inside a class folder
    touch(root / ".DS_Store")
    os.makedirs(root / ".thumbs")                   # hidden folder: not a class
    return str(root)


def test_folder_classes_photos_and_problems(folder):
    names, photos, problems = read_folder(folder)
    assert names == ["happy", "sad"]
    j = os.path.join
    assert photos == [Photo(j(folder, "happy", "a.PNG"), "happy", where=j(folder, "happy", "a.PNG")),
                      Photo(j(folder, "happy", "b.jpg"), "happy", where=j(folder, "happy", "b.jpg")),
                      Photo(j(folder, "happy", "z.jpg"), "happy", where=j(folder, "happy", "z.jpg")),
                      Photo(j(folder, "happy", "deeper", "c.jpeg"), "happy",
                            where=j(folder, "happy", "deeper", "c.jpeg")),
                      Photo(j(folder, "sad", "d.bmp"), "sad", where=j(folder, "sad", "d.bmp"))]
    assert all(p.split is None for p in photos)
    assert problems == [
        f"{j(folder, 'loose.jpg')}: not inside a class folder, left out",
        f"{j(folder, 'happy', 'notes.txt')}: not an image file (by its extension), left out"]


def test_folder_with_given_classes_keeps_their_order_and_reports_others(folder):
    names, photos, problems = read_folder(folder, classes=["sad", "angry"])
    assert names == ["sad", "angry"]
    assert [p.label for p in photos] == ["sad"]
    assert f"{os.path.join(folder, 'happy')}: class 'happy' is not in --classes, left out" in problems
    assert not any("notes.txt" in p for p in problems)     # a left-out class is not walked


def test_not_a_folder(tmp_path):
    with pytest.raises(FerTfError, match=r"^.*nowhere: not a folder; --dataset folder needs one "
                                         r"sub-folder per class$"):
        read_folder(str(tmp_path / "nowhere"))


def write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return str(path)


def test_csv_rows_paths_and_header(tmp_path):
    absolute = str(tmp_path / "abs.jpg")
    path = write(tmp_path / "labels.csv",
                 f"Path , LABEL\n a.jpg , happy \n\nsub/b.jpg,sad\n{absolute},happy\n")
    names, photos, problems = read_csv(path)
    assert names == ["happy", "sad"] and problems == []
    assert photos == [Photo(str(tmp_path / "a.jpg"), "happy", None, f"{path}:2"),
                      Photo(str(tmp_path / "sub" / "b.jpg"), "sad", None, f"{path}:4"),
                      Photo(absolute, "happy", None, f"{path}:5")]


def test_csv_without_header_counts_lines_from_one(tmp_path):
    # "x.jpg" sorts after "path": only the words path,label make a header.
    path = write(tmp_path / "labels.csv", "x.jpg,happy,TRAIN\nb.jpg,sad,test\nc.jpg,sad,eval\n")
    names, photos, problems = read_csv(path)
    assert [(p.where, p.split) for p in photos] == [(f"{path}:1", "train"), (f"{path}:2", "test"),
                                                   (f"{path}:3", "eval")]
    assert names == ["happy", "sad"] and problems == []


def test_csv_bad_rows_are_reported_with_their_line(tmp_path):
    path = write(tmp_path / "labels.csv",
                 "path,label,split\na.jpg,happy,train\nb.jpg\n,sad,train\nc.jpg,,train\n"
                 "d.jpg,sad,validation\ne.jpg,sad,test,extra\nf.jpg,angry,eval\n")
    names, photos, problems = read_csv(path, classes=["happy", "sad"])
    assert [p.path for p in photos] == [str(tmp_path / "a.jpg")]
    assert names == ["happy", "sad"]
    assert problems == [
        f"{path}:3: expected path,label[,split], found 1 value(s) ['b.jpg'], left out",
        f"{path}:4: expected path,label[,split], found 3 value(s) ['', 'sad', 'train'], left out",
        f"{path}:5: expected path,label[,split], found 3 value(s) ['c.jpg', '', 'train'], left out",
        f"{path}:6: split 'validation' is not train, eval or test, left out",
        f"{path}:7: expected path,label[,split], found 4 value(s) "
        "['e.jpg', 'sad', 'test', 'extra'], left out",
        f"{path}:8: label 'angry' is not one of happy, sad, left out"]


def test_csv_mixing_rows_with_and_without_split_is_refused(tmp_path):
    path = write(tmp_path / "labels.csv", "a.jpg,happy,train\nb.jpg,sad\n")
    with pytest.raises(FerTfError, match="some rows give a split and some do not"):
        read_csv(path)


def test_csv_that_cannot_be_read(tmp_path):
    with pytest.raises(FerTfError, match=r"missing.csv: cannot read the csv \(No such file"):
        read_csv(str(tmp_path / "missing.csv"))
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("caf\xe9.jpg,happy\n".encode("latin-1"))
    with pytest.raises(FerTfError, match="latin1.csv: cannot read the csv"):
        read_csv(str(bad))


def test_csv_byte_order_mark_and_empty_file(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffpath,label\na.jpg,happy\n".encode("utf-8"))
    names, photos, _ = read_csv(str(path))
    assert names == ["happy"] and photos[0].where == f"{path}:2"
    assert read_csv(write(tmp_path / "empty.csv", "")) == ([], [], [])
