"""The Python API: construct an `Analyzer` once, call it on images, frames or videos.

    >>> import fer_tf
    >>> analyzer = fer_tf.Analyzer()                      # the shipped models, loaded once
    >>> result = analyzer.analyze("photo.jpg")            # a path, bytes, numpy array or PIL image
    >>> [(face.label, round(face.smile, 2)) for face in result.faces]
    [('happy', 0.98)]
    >>> results = analyzer.analyze_many(["a.jpg", "b.png"])   # faces batched across pictures
    >>> results.to_pandas()                               # one row per face, a column per class

Every picture goes through the face pipeline (detect, place landmarks, align each face the way
FER2013 frames faces, at each model's own input size); faces from many pictures are classified in
batches. A picture that cannot be read is a result with `error` set, never an exception that
stops a batch. `fer-tf predict` is a thin layer over this module.
"""
import dataclasses
import os
import threading

import cv2
import numpy as np

from fer_tf import faces
from fer_tf.core.errors import FerTfError
from fer_tf.apps import heads
from fer_tf.serving import exported

LANDMARK_SOURCES = ("dlib", "cnn")


@dataclasses.dataclass
class Face:
    """One face: its box in image pixels (left, top, right, bottom), the detector's score, and
    what the Analyzer's heads (apps/heads.py) filled: the expression probabilities, the smile
    probability, the 68 landmarks when asked for."""
    index: int
    box: tuple
    score: float = None
    landmarks: np.ndarray = None
    probabilities: np.ndarray = None
    classes: tuple = ()
    smile: float = None
    heads: tuple = dataclasses.field(default=(), repr=False, compare=False)

    @property
    def label(self):
        """The most probable expression."""
        return self.classes[int(np.argmax(self.probabilities))]

    @property
    def emotions(self):
        """{class name: probability}."""
        return {c: float(p) for c, p in zip(self.classes, self.probabilities)}

    def to_dict(self):
        out = {"face": self.index, "box": [float(v) for v in self.box],
               "score": None if self.score is None else float(self.score)}
        for head in self.heads:
            out.update(head.fields(self))
        return out


@dataclasses.dataclass
class Result:
    """One picture — an image, or one frame of a video or webcam (`frame` set) — and its faces;
    `error` says why a picture could not be analysed (the batch carries on)."""
    source: str
    frame: int = None
    faces: list = dataclasses.field(default_factory=list)
    error: str = None
    skipped: bool = False           # a file in a folder that is neither image nor video
    image: np.ndarray = dataclasses.field(default=None, repr=False)   # kept only to annotate

    def to_dict(self):
        return {"source": self.source, "frame": self.frame, "error": self.error,
                "faces": [f.to_dict() for f in self.faces]}

    def to_pandas(self):
        return Results([self]).to_pandas()


class Results(list):
    """A list of `Result`s with a DataFrame view."""

    def to_pandas(self):
        """One row per face (a picture without a face, or with an error, gives one row with an
        empty face): source, frame, face, box, score, then each head's columns (label, one per
        class, smile), error."""
        import pandas as pd
        rows, columns = [], []
        for result in self:
            base = {"source": result.source, "frame": result.frame, "error": result.error}
            if not result.faces:
                rows.append({**base, "face": None})
            for face in result.faces:
                left, top, right, bottom = face.box
                values = {}
                for head in face.heads:
                    values.update(head.frame_values(face))
                columns = columns or list(values)
                rows.append({**base, "face": face.index, "left": left, "top": top, "right": right,
                             "bottom": bottom, "score": face.score, **values})
        frame = pd.DataFrame(rows, columns=["source", "frame", "face", "left", "top", "right",
                                            "bottom", "score", *columns, "error"])
        for column in ("frame", "face"):                 # whole numbers, empty where none
            frame[column] = frame[column].astype("Int64")
        return frame


def to_rgb(image, bgr=False):
    """A path, encoded bytes, numpy array (grey HxW, RGB or BGR HxWx3, RGBA HxWx4; uint8) or PIL
    image -> RGB uint8. Raises faces.BadImage with a short reason."""
    if isinstance(image, (str, os.PathLike, bytes, bytearray)):
        return faces.load_image(os.fspath(image) if isinstance(image, os.PathLike) else image)
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise faces.BadImage(f"numpy image of dtype {image.dtype}; give uint8 pixels 0-255")
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[:, :, 0]
        if image.ndim == 2:
            return np.ascontiguousarray(np.repeat(image[:, :, None], 3, axis=2))
        if image.ndim != 3 or image.shape[2] not in (3, 4) or min(image.shape[:2]) < 1:
            raise faces.BadImage(f"numpy image of shape {image.shape}; give HxW, HxWx3 or HxWx4")
        image = image[:, :, :3]
        return np.ascontiguousarray(image[:, :, ::-1] if bgr else image)
    if hasattr(image, "getexif") and hasattr(image, "mode"):    # a PIL image
        return faces.pil_to_rgb(image)
    raise faces.BadImage(f"cannot read a {type(image).__name__} as an image; give a path, "
                         "bytes, a numpy array or a PIL image")


def read_frames(source, stride=1, max_frames=None):
    """Yield (frame index, RGB frame, None) of a video file or webcam index; (None, None, error)
    when it cannot be opened or has no readable frame."""
    webcam = isinstance(source, int) or (isinstance(source, str) and source.isdigit()
                                         and not os.path.exists(source))
    capture = cv2.VideoCapture(int(source) if webcam else os.fspath(source))
    if not capture.isOpened():
        yield None, None, (f"cannot open webcam {source}" if webcam
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


class Analyzer:
    """Face detection, landmarks, expression and smile for pictures; build once, reuse.

    model: the expression model (a SavedModel or model dir exported by fer-tf, or an
        `ExportedModel` already loaded; None: the shipped `default`). smile: True for the model's
        own smile head if it has one (one forward pass per face), else the shipped smile model; a
        path (or an ExportedModel) for another smile model; False for none.
    landmarks: "dlib" (dlib's 68-point predictor), "cnn" (the shipped compact landmark model, or
        the landmark SavedModel given as `landmarks_model`; it then also places the points that
        align each face) or None (no points reported; alignment still uses what it needs).
    detector: "blazeface_auto" (default: BlazeFace's short-range model, and its full-range one
        for wide shots and group photos), "blazeface" (short range only) or "dlib" (HOG, the
        seed's pipeline); BlazeFace aligns on its own eye points.
    detect=False takes every picture as a face crop already (FER2013-style).
    workers: threads that detect and align (one face pipeline each) while the calling thread
        classifies; 2 uses both cores of a 2-core machine.
    align_points: with dlib's detector, the eyes that align each face come from its 68-point
        (default, the seed's pipeline) or 5-point predictor (faster to load and run).
    optimize=False: load and make the first call faster, every later call slower (TensorFlow's
        graph optimiser is skipped) — for a process that analyses one picture and exits.
    report_landmarks=False: the points place and align faces but are left out of predict's rows.
    extra_heads: more per-face outputs (apps/heads.FaceHead instances), run after the built-in
        ones; their declarations add their fields, columns and marks everywhere.
    An Analyzer runs one call at a time: share it between threads only behind a lock.
    """

    def __init__(self, model=None, smile=True, landmarks="dlib", detector=faces.DEFAULT_DETECTOR,
                 landmarks_model=None, detect=True, upsample=None, batch_size=64, workers=1,
                 align_points=68, optimize=True, precision="auto", report_landmarks=True,
                 extra_heads=()):
        if landmarks not in LANDMARK_SOURCES + (None,):
            raise FerTfError(f"landmarks={landmarks!r}: use 'dlib', 'cnn' or None")
        if detector not in faces.DETECTORS:
            raise FerTfError(f"detector={detector!r}: use {', '.join(faces.DETECTORS)}")
        if align_points not in faces.ALIGN_POINTS:
            raise FerTfError(f"align_points={align_points!r}: use 68 or 5")
        self.model = (model if isinstance(model, exported.ExportedModel) else
                      exported.ExportedModel(model or exported.shipped_model("default"),
                                             optimize=optimize, precision=precision))
        self.classes = self.model.label_set.classes
        self.smile_model = None
        # An expression export with its own smile head answers both in one forward pass.
        self.smile_from_model = smile is True and self.model.has_smile
        if isinstance(smile, exported.ExportedModel):
            self.smile_model = smile
        elif smile and not self.smile_from_model:
            self.smile_model = exported.ExportedModel(
                exported.shipped_model("smile") if smile is True else smile, "--smile-model", optimize,
                precision)
        if self.smile_model is not None and "smile" not in self.smile_model.label_set.classes:
            raise FerTfError(f"{self.smile_model.path}: a {self.smile_model.label_set.name} "
                             "model, not a smile model")
        self.landmark_model = None
        if landmarks == "cnn":
            self.landmark_model = (landmarks_model if isinstance(landmarks_model, exported.LandmarkModel)
                                   else exported.LandmarkModel(landmarks_model or exported.shipped_model(
                                       "landmarks"), "--landmarks-model", optimize))
        # What each face gets, in order (apps/heads.py); the smile head reads the expression
        # head's P(smile) when the expression export has its own.
        expression = heads.ExpressionHead(self.model)
        self.heads = (expression,)
        if smile:
            self.heads += (heads.SmileHead(self.smile_model, expression),)
        if landmarks:
            self.heads += (heads.LandmarksHead(reported=report_landmarks),)
        self.heads += tuple(extra_heads)
        self.landmarks, self.detector, self.detect = landmarks, detector, detect
        self.upsample, self.batch_size = upsample, batch_size
        self.workers, self.align_points = workers, align_points
        self._local = threading.local()
        self._pending = []      # (Face, {model: uint8 crop})
        self._waiting = []      # Results not yet complete, in input order

    # ---- the public calls ---------------------------------------------------------------
    def analyze(self, image, bgr=False):
        """One picture -> Result. `bgr=True` for a numpy array in OpenCV's channel order."""
        return self.analyze_many([image], bgr=bgr)[0]

    def analyze_many(self, images, bgr=False):
        """Pictures -> Results in input order, their faces classified in batches; a picture that
        cannot be read is a Result with `error`, and the rest are analysed."""
        return Results(self.stream(self._pictures(images, bgr)))

    def analyze_video(self, source, stride=1, max_frames=None):
        """A video file or webcam index -> a generator of per-frame Results (every `stride`th
        frame, at most `max_frames`); a webcam's frames come back one at a time, a file's in
        batches."""
        name = str(source)
        live = not os.path.exists(name) and name.isdigit()
        pictures = ((Result(name, frame, error=error), rgb)
                    for frame, rgb, error in read_frames(source, stride, max_frames))
        return self.stream(pictures, flush_each=live)

    # ---- the batching engine (also behind `fer-tf predict`) -----------------------------
    def stream(self, pictures, flush_each=False, keep_images=False):
        """(Result, RGB image or None) pairs -> completed Results, in input order. With
        `workers` > 1, detection and alignment run in a pool of threads (one face pipeline per
        thread: dlib objects must not be shared), a bounded window ahead of the main thread,
        which classifies in batches. `flush_each`: True, or a predicate on the Result, to
        classify a picture's faces before the next one is read (a webcam). One stream at a time
        per Analyzer (use one Analyzer per thread); a new call drops what an abandoned one left."""
        self._pending, self._waiting = [], []
        flush = flush_each if callable(flush_each) else (lambda result: flush_each)
        if self.workers <= 1:
            for result, rgb in pictures:
                yield from self.add(result, rgb, keep_images)
                if flush(result):
                    yield from self.finish()
        else:
            from collections import deque
            from concurrent.futures import ThreadPoolExecutor
            window = deque()
            with ThreadPoolExecutor(self.workers, thread_name_prefix="fer_tf_faces") as pool:
                for result, rgb in pictures:
                    job = pool.submit(self._faces, rgb) if rgb is not None else None
                    window.append((result, rgb, job))
                    # A live source is not read ahead; a file is, by a few pictures per worker.
                    while window and (flush(result) or len(window) > 4 * self.workers):
                        yield from self._collect(*window.popleft(), keep_images)
                    if flush(result):
                        yield from self.finish()
                while window:
                    yield from self._collect(*window.popleft(), keep_images)
        yield from self.finish()

    def _collect(self, result, rgb, job, keep_images):
        try:
            found = job.result() if job is not None else []
        except Exception as e:  # noqa: BLE001 — one picture's failure is that picture's error
            result.error, rgb, found = f"face pipeline failed: {type(e).__name__}: {e}", None, []
        return self._queue(result, rgb, found, keep_images)

    def add(self, result, rgb, keep_image=False):
        """Queue one picture's faces; returns the Results completed so far (in order)."""
        return self._queue(result, rgb, self._faces(rgb) if rgb is not None else [], keep_image)

    def _queue(self, result, rgb, found, keep_image):
        if rgb is not None and keep_image:
            result.image = rgb
        for i, (face, crops) in enumerate(found):
            record = Face(i, tuple(round(float(v), 1) for v in face.box),
                          None if not self.detect else round(float(face.score), 4),
                          classes=self.classes, heads=self.heads)
            for head in self.heads:
                head.detected(record, face)
            result.faces.append(record)
            self._pending.append((record, crops))
        self._waiting.append(result)
        if len(self._pending) >= self.batch_size:
            self._classify()
        return self._ready()

    def finish(self):
        self._classify()
        return self._ready()

    def _pictures(self, images, bgr):
        for i, image in enumerate(images):
            source = (os.fspath(image) if isinstance(image, (str, os.PathLike))
                      else f"<{type(image).__name__} {i}>")
            try:
                yield Result(source), to_rgb(image, bgr)
            except faces.BadImage as e:
                yield Result(source, error=str(e)), None

    @property
    def reported_heads(self):
        """The heads whose outputs predict's rows (and /v1/analyze) carry."""
        return [head for head in self.heads if head.reported]

    def _models(self):
        """The exports whose aligned crops the heads read, once each."""
        return list(dict.fromkeys(m for head in self.heads for m in head.models()))

    def _faces(self, rgb):
        """[(faces.Face, {model: crop at its input size})] of one picture."""
        if not self.detect:
            whole = faces.Face((0, 0, rgb.shape[1], rgb.shape[0]), None, None)
            return [(whole, {m: _resize(rgb, m.image_size) for m in self._models()})]
        pipeline = getattr(self._local, "pipeline", None)
        if pipeline is None:            # one per thread (the calling thread, or a pool worker)
            pipeline = self._local.pipeline = faces.FacePipeline(
                detector=self.detector, align_points=self.align_points,
                landmarks=self.landmarks is not None, points_model=self.landmark_model)
        pipeline.upsample = (self.upsample if self.upsample is not None
                             else int(max(rgb.shape[:2]) < faces.SMALL_IMAGE_SIDE))
        found = pipeline.faces(rgb)
        return [(face, {m: faces.align(rgb, face.alignment_points, m.image_size[0],
                                       m.image_size[2]) for m in self._models()})
                for face in found]

    def _classify(self):
        if not self._pending:
            return
        found = [f for f, _ in self._pending]
        crops = [c for _, c in self._pending]
        for head in self.heads:
            head.predict(found, crops)
        self._pending = []

    def _ready(self):
        done = []
        while self._waiting and all(f.probabilities is not None for f in self._waiting[0].faces):
            done.append(self._waiting.pop(0))
        return done


def _resize(rgb, image_size):
    height, width, channels = image_size
    crop = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)[:, :, None] if channels == 1 else crop
