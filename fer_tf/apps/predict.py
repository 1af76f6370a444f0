"""`fer-tf predict`: expressions of every face in images, folders, videos or a webcam.

Each picture goes through the face pipeline (dlib detection, 68 landmarks, FER2013-framed
alignment at the model's own input size), faces from many pictures are batched through the
exported model, and every face is reported with its box, probabilities, top label and smile
probability (the expression model's own smile head, or the shipped smile model; `--no-smile`
leaves it out); bfloat16 arithmetic where the CPU has it (`--precision`). A thin layer over the Python
API (`fer_tf.apps.analyzer`): the same engine, plus files, folders, output formats and annotation. A file
without a face is reported as such; an unreadable file is reported on its own line and the run
carries on (exit status 1 at the end if any failed). `--no-detect` takes each image as a face
crop already (FER2013-style).
"""
import csv
import dataclasses
import gc
import json
import os
import sys


from fer_tf.apps import analyzer
from fer_tf.core import atomic, outputs
from fer_tf import faces
from fer_tf.core.errors import FerTfError

VIDEO_EXTENSIONS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}


def expand_paths(paths):
    """-> [(kind, path)] with kind image | video | webcam; folders walked recursively, sorted."""
    items = []
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    ext = os.path.splitext(name)[1].lower()
                    kind = ("video" if ext in VIDEO_EXTENSIONS else
                            "image" if ext in faces.IMAGE_EXTENSIONS else "other")
                    items.append((kind, os.path.join(root, name)))
        elif path.isdigit() and not os.path.exists(path):
            items.append(("webcam", path))
        else:
            ext = os.path.splitext(path)[1].lower()
            items.append(("video" if ext in VIDEO_EXTENSIONS else "image", path))
    return items


def read_pictures(kind, path, stride=1, max_frames=None):
    """Yield (frame index or None, RGB image or None, error or None); error None and image None
    means the file was skipped on purpose."""
    if kind == "other":
        yield None, None, None
    elif kind == "image":
        try:
            yield None, faces.load_image(path), None
        except faces.BadImage as e:
            yield None, None, str(e)
    else:
        yield from analyzer.read_frames(path, stride, max_frames)


@dataclasses.dataclass(frozen=True)
class Row:
    """One row of predict's output — a line of its jsonl, csv or table, a face of `/v1/analyze`
    — typed, and its one JSON form: a face (index, box and the heads' fields, in the heads'
    order), or a picture with no face (`note`) or an error."""
    path: str
    frame: int = None
    face: int = None
    box: tuple = None
    values: dict = dataclasses.field(default_factory=dict)   # the heads' fields
    error: str = None
    note: str = None

    BASE = ("path", "frame", "face", "box", "error", "note")

    @property
    def is_face(self):
        return self.face is not None

    def to_json(self):
        """{path, frame, face, box, <the heads' fields>, error} for a face; {path, frame, face,
        error[, note]} otherwise."""
        out = {"path": self.path, "frame": self.frame, "face": self.face}
        if self.is_face:
            return {**out, "box": list(self.box), **self.values, "error": None}
        out["error"] = self.error
        return out if self.error else {**out, "note": self.note}

    @classmethod
    def from_json(cls, data):
        """A row read back from predict's jsonl; a line that is not one is refused."""
        if not isinstance(data, dict) or "path" not in data or "face" not in data:
            raise FerTfError("not a fer-tf predict row (needs path and face); read the jsonl "
                             "`fer-tf predict --format jsonl` wrote")
        return cls(path=data["path"], frame=data.get("frame"), face=data["face"],
                   box=tuple(data["box"]) if data.get("box") is not None else None,
                   values={k: v for k, v in data.items() if k not in cls.BASE},
                   error=data.get("error"), note=data.get("note"))


def rows(item, heads):
    """Rows, one per face (or one for a file with no face or an error); each head of `heads`
    (apps/heads.py) adds its fields."""
    base = {"path": item.source, "frame": item.frame}
    if item.error:
        return [Row(**base, error=item.error)]
    if item.skipped:
        return [Row(**base, note="skipped: not an image or video file")]
    if not item.faces:
        return [Row(**base, note="no face found")]
    out = []
    for face in item.faces:
        values = {}
        for head in heads:
            values.update(head.fields(face, rounded=True))
        out.append(Row(**base, face=face.index, box=tuple(face.box), values=values))
    return out


class Writer:
    """table | jsonl | csv, one picture at a time: to stdout, or to a hidden temporary file beside
    `output` that is flushed after every picture and renamed to `output` when the run ends —
    normally, on Ctrl-C or on an error — so every completed result is kept. The heads' own
    declarations give the csv columns and the table's text."""

    def __init__(self, fmt, classes, output=None, heads=()):
        self.fmt, self.classes, self.output = fmt, classes, output
        self.leading = [h for h in heads if not h.trailing]
        self.trailing = [h for h in heads if h.trailing]
        self.heads = self.leading + self.trailing
        self.tmp = None
        if output:
            self.tmp = atomic.sibling_temp(output)
            self.stream = open(self.tmp, "w", encoding="utf-8", newline="")
            if fmt == "table":
                self.stream.write(f"{outputs.TABLE_HEADER}: path [frame] face [left,top,right,"
                                  "bottom]: label (top three)\n")
        else:
            self.stream = sys.stdout
        if fmt == "csv":
            self.csv = csv.writer(self.stream, lineterminator="\n")
            self.csv.writerow(["path", "frame", "face", "left", "top", "right", "bottom",
                               *self._columns(self.leading), "error", *self._columns(self.trailing)])

    def _columns(self, heads):
        return [c for head in heads for c in head.csv_columns(self.classes)]

    def _cells(self, heads, row):
        return [c for head in heads for c in head.csv_cells(row.values, self.classes)]

    def write(self, item):
        for row in rows(item, self.heads):
            if self.fmt == "jsonl":
                self.stream.write(json.dumps(row.to_json()) + "\n")
            elif self.fmt == "csv":
                self._csv_row(row)
            else:
                self._table_row(row)
        self.stream.flush()

    def _csv_row(self, row):
        self.csv.writerow([row.path, "" if row.frame is None else row.frame,
                           row.face if row.is_face else "", *(row.box or [""] * 4),
                           *self._cells(self.leading, row), row.error or row.note or "",
                           *self._cells(self.trailing, row)])

    def _table_row(self, row):
        where = row.path + ("" if row.frame is None else f" [frame {row.frame}]")
        if row.error:
            self.stream.write(f"{where}: ERROR {row.error}\n")
        elif not row.is_face:
            self.stream.write(f"{where}: {row.note}\n")
        else:
            box = ",".join(f"{v:.0f}" for v in row.box)
            self.stream.write(f"{where} face {row.face} [{box}]: "
                              + "".join(head.inline(row.values) for head in self.heads) + "\n"
                              + "".join(head.lines(row.values) for head in self.heads))

    def close(self):
        """Publish what was written (also after an interruption); idempotent."""
        if self.tmp is None:
            return
        self.stream.close()
        atomic.publish_file(self.tmp, self.output)
        self.tmp = None


def run(paths, model_path=None, fmt="table", output=None, annotate=None, detect=True,
        upsample=None, with_landmarks=False, stride=1, max_frames=None, batch_size=64,
        landmarks="dlib", landmarks_model=None, detector=faces.DEFAULT_DETECTOR, smile=False, workers=1,
        align_points=68, precision="auto"):
    """Returns a Summary (images, video frames, faces, failed files). `landmarks` says who
    places the 68 points used for alignment: dlib's predictor, or the project's landmark CNN
    (`landmarks_model`); `smile`: True for the shipped smile model, or a path. Results are
    written as each picture completes; faces are batched across pictures (a webcam is
    classified frame by frame, for latency)."""
    from fer_tf.apps import annotate as drawing
    items = expand_paths(paths)
    if not items:
        raise FerTfError(f"{' '.join(paths)}: no images or videos found")
    # dlib's points are placed only when shown or used to align (BlazeFace aligns on its eyes).
    shown = landmarks if (with_landmarks or landmarks == "cnn") else None
    # One photo: optimising the graphs would cost more than it saves.
    one_photo = len(items) == 1 and items[0][0] == "image"
    engine = analyzer.Analyzer(model_path, smile=smile, landmarks=shown,
                               landmarks_model=landmarks_model, detector=detector, detect=detect,
                               upsample=upsample, batch_size=batch_size, workers=workers,
                               align_points=align_points, optimize=not one_photo,
                               precision=precision, report_landmarks=with_landmarks)
    # TensorFlow and the models leave ~300,000 objects that every full garbage collection walks,
    # and the per-photo work allocates enough to trigger them: set aside, 800 GENKI-4K photos
    # take 4.95 s instead of 5.8 (the Python API leaves that choice to its caller).
    gc.freeze()
    webcams = {path for kind, path in items if kind == "webcam"}
    summary = Summary()
    writer = Writer(fmt, engine.classes, output, engine.reported_heads)
    annotator = (drawing.Annotator(annotate, engine.model.label_set, [p for _, p in items])
                 if annotate else None)

    def pictures():
        for kind, path in items:
            for frame, rgb, error in read_pictures(kind, path, stride, max_frames):
                summary.failed += error is not None
                if rgb is not None:
                    if frame is None:
                        summary.images += 1
                    else:
                        summary.frames += 1
                yield (analyzer.Result(path, frame, error=error,
                                       skipped=rgb is None and error is None), rgb)

    video = None                   # the video being annotated: closed when the next input starts
    try:
        for item in engine.stream(pictures(), keep_images=bool(annotate),
                                  flush_each=lambda result: result.source in webcams):
            summary.faces += len(item.faces)
            if annotator:              # drawn before its row is written: a row implies its frame
                if video is not None and item.source != video:
                    annotator.finish_video(video)
                video = item.source if item.frame is not None else None
                if item.image is not None:
                    annotator.add(item)
                    item.image = None
            writer.write(item)
    finally:
        # Ctrl-C or an error: keep every completed result and close what is half written.
        writer.close()
        if annotator:
            annotator.close()
    return summary


@dataclasses.dataclass
class Summary:
    images: int = 0
    frames: int = 0
    faces: int = 0
    failed: int = 0

    def __str__(self):
        parts = [f"{self.images} image(s)"]
        if self.frames:
            parts.append(f"{self.frames} video frame(s)")
        parts.append(f"{self.faces} face(s)")
        if self.failed:
            parts.append(f"{self.failed} file(s) failed")
        return ", ".join(parts)


def default_workers(detector):
    """Measured (README, bench_peer / bench_video): two threads help BlazeFace (3.2x -> 4.3x the
    `fer` package on GENKI-4K photos); with dlib they were slower on those small photos (84 -> 57
    faces/s) though faster on 640x480 video (39 -> 54 frames/s), so dlib keeps one."""
    return min(2, os.cpu_count() or 1) if detector.startswith("blazeface") else 1


def main(args):
    summary = run(args.paths, args.model, args.format, args.output, args.annotate,
                  not args.no_detect, args.upsample, args.with_landmarks, args.video_stride,
                  args.max_frames, landmarks=args.landmarks, landmarks_model=args.landmarks_model,
                  detector=args.detector, smile=not args.no_smile,
                  workers=args.workers or default_workers(args.detector),
                  align_points=args.align, precision=args.precision)
    print(f"fer-tf predict: {summary}", file=sys.stderr)
    return 1 if summary.failed else 0
