"""`fer-tf predict`: expressions of every face in images, folders, videos or a webcam.

Each picture goes through the face pipeline (dlib detection, 68 landmarks, FER2013-framed
alignment at the model's own input size), faces from many pictures are batched through the
exported model, and every face is reported with its box, probabilities and top label. A file
without a face is reported as such; an unreadable file is reported on its own line and the run
carries on (exit status 1 at the end if any failed). `--no-detect` takes each image as a face
crop already (FER2013-style).
"""
import csv
import dataclasses
import json
import os
import sys

import cv2
import numpy as np

from fer_tf import atomic, faces, outputs
from fer_tf.data import records
from fer_tf.serving import exported
from fer_tf.errors import FerTfError

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
VIDEO_EXTENSIONS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}
SMALL_IMAGE_SIDE = 256      # below this, detect with one 2x upsampling (faces are small)


@dataclasses.dataclass
class FaceResult:
    index: int
    box: tuple
    landmarks: np.ndarray = None
    probabilities: np.ndarray = None


@dataclasses.dataclass
class ItemResult:
    """One picture: an image file, or one frame of a video or webcam."""
    path: str
    frame: int = None
    faces: list = dataclasses.field(default_factory=list)
    error: str = None
    skipped: bool = False           # a file in a folder that is neither image nor video
    image: np.ndarray = None        # kept only while annotating


def default_model_path():
    """The model shipped in the repository (models/default), or $FER_TF_MODEL."""
    path = os.environ.get("FER_TF_MODEL") or os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models", "default")
    if not os.path.exists(path):
        raise FerTfError("no default model at models/default; pass --model PATH (a SavedModel "
                         "exported by fer-tf) or set FER_TF_MODEL")
    return path


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
                            "image" if ext in IMAGE_EXTENSIONS else "other")
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
        return
    if kind == "image":
        try:
            yield None, faces.load_image(path), None
        except faces.BadImage as e:
            yield None, None, str(e)
        return
    capture = cv2.VideoCapture(int(path) if kind == "webcam" else path)
    if not capture.isOpened():
        yield None, None, (f"cannot open webcam {path}" if kind == "webcam"
                           else "cannot open video (unreadable or unsupported codec)")
        return
    index = taken = 0
    try:
        while max_frames is None or taken < max_frames:
            ok, bgr = capture.read()
            if not ok:
                break
            if index % stride == 0:
                taken += 1
                yield index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), None
            index += 1
    finally:
        capture.release()
    if taken == 0:
        yield None, None, "no readable frames"


class Predictor:
    """Detect + align + batch-classify; results come back in input order."""

    def __init__(self, model, detect=True, upsample=None, batch_size=64, keep_images=False,
                 landmark_model=None, detector="dlib", with_landmarks=False):
        self.model = model
        self.landmark_model = landmark_model     # None: dlib's predictor places the landmarks
        self.height, self.width, self.channels = model.image_size
        self.detect = detect
        self.detector = detector
        # dlib's 68 points are placed only when they are shown or align (dlib detector).
        self.with_landmarks = with_landmarks
        self.upsample = upsample
        self.batch_size = batch_size
        self.keep_images = keep_images
        self.pipeline = None
        self.pending = []       # (ItemResult, FaceResult, uint8 face crop)
        self.waiting = []       # ItemResults not yet returned, in input order

    def _faces(self, rgb):
        if not self.detect:
            return [(faces.Face((0, 0, rgb.shape[1], rgb.shape[0]), None), self._resize(rgb))]
        if self.pipeline is None:
            self.pipeline = faces.FacePipeline(detector=self.detector, landmarks=(
                self.with_landmarks and self.landmark_model is None))
        self.pipeline.upsample = (self.upsample if self.upsample is not None
                                  else int(max(rgb.shape[:2]) < SMALL_IMAGE_SIDE))
        found = self.pipeline.faces(rgb)
        if self.landmark_model is not None and found:
            encoded = records.encode_png(rgb[:, :, ::-1])
            for face in found:
                face.landmarks = self.landmark_model.points(encoded, face.box)
        return [(face, faces.align(rgb, face.alignment_points, self.height, self.channels))
                for face in found]

    def _resize(self, rgb):
        crop = cv2.resize(rgb, (self.width, self.height), interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)[:, :, None] if self.channels == 1 else crop

    def add(self, item, rgb):
        """Queue one picture's faces; returns the items completed so far (in order)."""
        if rgb is not None:
            if self.keep_images:
                item.image = rgb
            for i, (face, crop) in enumerate(self._faces(rgb)):
                result = FaceResult(i, tuple(round(float(v), 1) for v in face.box), face.landmarks)
                item.faces.append(result)
                self.pending.append((item, result, crop))
        self.waiting.append(item)
        if len(self.pending) >= self.batch_size:
            self._classify()
        return self._ready()

    def finish(self):
        self._classify()
        return self._ready()

    def _classify(self):
        if self.pending:
            probabilities = self.model.predict_faces(np.stack([c for _, _, c in self.pending]))
            for (_, face, _), p in zip(self.pending, probabilities):
                face.probabilities = p
            self.pending = []

    def _ready(self):
        done = []
        while self.waiting and all(f.probabilities is not None for f in self.waiting[0].faces):
            done.append(self.waiting.pop(0))
        return done


def rows(item, classes, with_landmarks=False):
    """Flat dicts, one per face (or one for a file with no face or an error)."""
    base = {"path": item.path, "frame": item.frame}
    if item.error:
        return [{**base, "face": None, "error": item.error}]
    if item.skipped:
        return [{**base, "face": None, "error": None, "note": "skipped: not an image or video file"}]
    if not item.faces:
        return [{**base, "face": None, "error": None, "note": "no face found"}]
    out = []
    for face in item.faces:
        row = {**base, "face": face.index, "box": list(face.box),
               "label": classes[int(face.probabilities.argmax())],
               "probabilities": {c: round(float(p), 6) for c, p in zip(classes, face.probabilities)},
               "error": None}
        if with_landmarks and face.landmarks is not None:
            row["landmarks"] = np.round(face.landmarks, 1).tolist()
        out.append(row)
    return out


class Writer:
    """table | jsonl | csv, one picture at a time: to stdout, or to a hidden temporary file beside
    `output` that is flushed after every picture and renamed to `output` when the run ends —
    normally, on Ctrl-C or on an error — so every completed result is kept."""

    def __init__(self, fmt, classes, output=None, with_landmarks=False):
        self.fmt, self.classes, self.output = fmt, classes, output
        self.with_landmarks = with_landmarks
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
            self.csv.writerow(["path", "frame", "face", "left", "top", "right", "bottom", "label",
                               *classes, "error"] + (["landmarks"] if with_landmarks else []))

    def write(self, item):
        for row in rows(item, self.classes, self.with_landmarks):
            if self.fmt == "jsonl":
                self.stream.write(json.dumps(row) + "\n")
            elif self.fmt == "csv":
                self._csv_row(row)
            else:
                self._table_row(row)
        self.stream.flush()

    def _csv_row(self, row):
        box = row.get("box") or [""] * 4
        probs = ([f"{row['probabilities'][c]:.6f}" for c in self.classes]
                 if "probabilities" in row else [""] * len(self.classes))
        extra = [json.dumps(row["landmarks"]) if "landmarks" in row else ""] if self.with_landmarks else []
        self.csv.writerow([row["path"], "" if row["frame"] is None else row["frame"],
                           "" if row["face"] is None else row["face"], *box,
                           row.get("label", ""), *probs, row["error"] or row.get("note", ""),
                           *extra])

    def _table_row(self, row):
        where = row["path"] + ("" if row["frame"] is None else f" [frame {row['frame']}]")
        if row["error"]:
            self.stream.write(f"{where}: ERROR {row['error']}\n")
        elif row["face"] is None:
            self.stream.write(f"{where}: {row['note']}\n")
        else:
            top = sorted(row["probabilities"].items(), key=lambda kv: -kv[1])[:3]
            box = ",".join(f"{v:.0f}" for v in row["box"])
            self.stream.write(f"{where} face {row['face']} [{box}]: {row['label']}  ("
                              + ", ".join(f"{c} {p:.2f}" for c, p in top) + ")\n")
            if "landmarks" in row:
                self.stream.write("    landmarks: " + " ".join(f"{x:.1f},{y:.1f}"
                                                               for x, y in row["landmarks"]) + "\n")

    def close(self):
        """Publish what was written (also after an interruption); idempotent."""
        if self.tmp is None:
            return
        self.stream.close()
        atomic.publish_file(self.tmp, self.output)
        self.tmp = None


def run(paths, model_path=None, fmt="table", output=None, annotate=None, detect=True,
        upsample=None, with_landmarks=False, stride=1, max_frames=None, batch_size=64,
        landmarks="dlib", landmarks_model=None, detector="dlib"):
    """Returns a Summary (images, video frames, faces, failed files). `landmarks` says who
    places the 68 points used for alignment: dlib's predictor, or the project's landmark CNN
    (`landmarks_model`). Results are written as each picture completes; faces are batched
    across pictures (a webcam is classified frame by frame, for latency)."""
    from fer_tf import annotate as drawing
    model = exported.ExportedModel(model_path or default_model_path())
    landmark_model = None
    if landmarks == "cnn":
        if not landmarks_model:
            raise FerTfError("--landmarks cnn needs --landmarks-model PATH (a landmark SavedModel)")
        landmark_model = exported.LandmarkModel(landmarks_model, "--landmarks-model")
    items = expand_paths(paths)
    if not items:
        raise FerTfError(f"{' '.join(paths)}: no images or videos found")
    predictor = Predictor(model, detect, upsample, batch_size, keep_images=bool(annotate),
                          landmark_model=landmark_model, detector=detector,
                          with_landmarks=with_landmarks or landmarks == "cnn")
    summary = Summary()
    writer = Writer(fmt, model.label_set.classes, output, with_landmarks)
    annotator = (drawing.Annotator(annotate, model.label_set, [p for _, p in items])
                 if annotate else None)

    def emit(done):
        for item in done:
            summary.faces += len(item.faces)
            writer.write(item)
            if annotator and item.image is not None:
                annotator.add(item)
                item.image = None

    try:
        for kind, path in items:
            for frame, rgb, error in read_pictures(kind, path, stride, max_frames):
                item = ItemResult(path, frame, error=error, skipped=rgb is None and error is None)
                summary.failed += error is not None
                if rgb is not None:
                    if frame is None:
                        summary.images += 1
                    else:
                        summary.frames += 1
                emit(predictor.add(item, rgb))
                if kind == "webcam":
                    emit(predictor.finish())
            if annotator and kind != "image":
                emit(predictor.finish())          # a video's frames are all drawn before it closes
                annotator.finish_video(path)
        emit(predictor.finish())
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


def main(args):
    summary = run(args.paths, args.model, args.format, args.output, args.annotate,
                  not args.no_detect, args.upsample, args.with_landmarks, args.video_stride,
                  args.max_frames, landmarks=args.landmarks, landmarks_model=args.landmarks_model,
                  detector=args.detector)
    print(f"fer-tf predict: {summary}", file=sys.stderr)
    return 1 if summary.failed else 0
