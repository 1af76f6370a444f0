"""Faces in the wild: load any common image, detect faces (dlib HOG), find 68 landmarks (dlib's
shape predictor from the face_recognition_models package) and align each face the way FER2013
frames its faces.

FER2013 framing, measured on 434 FER2013 faces (every 50th row of the csv, 4x upscaled, dlib
detector + 68-point predictor): the eye centres lie on a level line at 0.385 of the height, their
midpoint at 0.495 of the width, 0.36 of the width apart. `align` rotates the face so the eyes are
level and scales and crops it so they land exactly there.
"""
import dataclasses
import io
import os

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fer_tf.core.errors import FerTfError
from fer_tf.faces.blazeface import IOU_MERGE, iou      # no TensorFlow until a BlazeFace is made

EYE_LINE_Y = 0.385
EYE_MID_X = 0.495
EYE_DISTANCE = 0.36
LEFT_EYE = slice(36, 42)     # 0-based 68-point indices: the subject's right eye, image left
RIGHT_EYE = slice(42, 48)
MAX_DETECT_SIDE = 1024       # larger images are downscaled for detection, boxes mapped back
SMALL_IMAGE_SIDE = 256       # below this, dlib detects with one 2x upsampling (faces are small)
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}


class BadImage(ValueError):
    """A file that cannot be used as an image; the message says why, in a few words."""


def load_image(source, max_pixels=None):
    """Path or bytes -> RGB uint8 HxWx3, EXIF orientation applied; grey, RGBA, palette, 16-bit
    and CMYK inputs converted. `max_pixels`: refuse larger images from their header, before
    decoding (a few hundred bytes of PNG can declare 10^10 pixels); PIL's own limit otherwise."""
    try:
        if isinstance(source, (bytes, bytearray)):
            if not source:
                raise BadImage("empty file")
            image = Image.open(io.BytesIO(source))
        else:
            if os.path.isfile(source) and os.path.getsize(source) == 0:
                raise BadImage("empty file")
            image = Image.open(source)
        if max_pixels and image.width * image.height > max_pixels:
            raise BadImage(f"image of {image.width}x{image.height} pixels is over the limit of "
                           f"{max_pixels:,} pixels; send a smaller image")
        image.load()
    except BadImage:
        raise
    except Image.DecompressionBombError as e:
        raise BadImage(f"over the limit: {str(e).rstrip('.')}; send a smaller image") from None
    except FileNotFoundError:
        raise BadImage("no such file") from None
    except IsADirectoryError:
        raise BadImage("is a directory") from None
    except UnidentifiedImageError:
        raise BadImage("not a readable image") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise BadImage(f"corrupt or truncated image ({str(e)[:60]})") from None
    return pil_to_rgb(image)


def pil_to_rgb(image):
    """A PIL image -> RGB uint8 HxWx3, EXIF orientation applied; grey, RGBA, palette, 16-bit
    and CMYK converted."""
    try:
        image = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError) as e:
        raise BadImage(f"corrupt or truncated image ({str(e)[:60]})") from None
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grey: scale the used range to 8 bits rather than clipping at 255.
        array = np.asarray(image, dtype=np.float64)
        top = array.max() if array.max() > 255 else 255.0
        image = Image.fromarray((array * (255.0 / top)).round().astype(np.uint8), "L")
    elif image.mode == "F":
        array = np.asarray(image, dtype=np.float64)
        scale = 255.0 if array.max() <= 1.0 else 1.0
        image = Image.fromarray(np.clip(array * scale, 0, 255).astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


@dataclasses.dataclass
class Face:
    box: tuple              # (left, top, right, bottom) in image pixels
    landmarks: np.ndarray   # (68, 2) float, image pixels; None when not asked for
    score: float = 0.0
    eyes: np.ndarray = None  # (2, 2) eye centres, image-left first

    @property
    def alignment_points(self):
        """What `align` needs: the 68 landmarks, or the detector's two eye centres."""
        return self.landmarks if self.landmarks is not None else self.eyes


# The default: BlazeFace's short-range model, and its full-range one for wide shots — every
# GENKI-4K photo found, faces down to 5-7 % of the photo's side, 5.5x dlib's HOG end to end
# (README, "Detector choice"). dlib stays: the seed's pipeline.
DETECTORS = ("blazeface_auto", "blazeface", "dlib")
DEFAULT_DETECTOR = "blazeface_auto"
WIDE_SHOT = 0.2
ALIGN_POINTS = (68, 5)


class FacePipeline:
    """A face detector — dlib's HOG frontal-face detector (the seed's pipeline) or BlazeFace,
    short-range or full-range (faster, finds more faces, gives the eye centres itself; see
    `DETECTORS`) — and dlib's 68-point predictor,
    created once and reused (one pipeline per thread: dlib objects must not be shared).

    `landmarks`: whether `faces` places the 68 points. BlazeFace aligns on its own eye keypoints,
    so the 100 MB predictor loads only when points are asked for; with dlib's detector the eyes
    come from the 68 points (`align_points=68`, the seed's pipeline) or from dlib's 5-point
    predictor (`align_points=5`: eye corners; 9 MB, loads in 0.08 s instead of 0.6).
    `points_model`: anything with `points_in(rgb, boxes) -> [N, 68, 2]` (an exported landmark
    model) places every face's 68 points instead of dlib's predictor, which then never loads.
    """

    def __init__(self, upsample=0, max_side=MAX_DETECT_SIDE, predictor_path=None,
                 detector="dlib", landmarks=True, align_points=68, points_model=None):
        if detector not in DETECTORS:
            raise FerTfError(f"--detector: unknown {detector!r}; use {', '.join(DETECTORS)}")
        if align_points not in ALIGN_POINTS:
            raise FerTfError(f"--align: unknown {align_points!r}; use 68 or 5")
        self.detector_name = detector
        self.upsample = upsample
        self.max_side = max_side
        self.points_model = points_model
        self.want_landmarks = points_model is None and (
            landmarks or (detector == "dlib" and align_points == 68))
        self.align_points = align_points
        self.predictor_path = predictor_path
        self._predictor = None
        self._five_point = None
        if detector == "dlib":
            import dlib
            self.detector = dlib.get_frontal_face_detector()
        else:
            from fer_tf.faces.blazeface import BlazeFace
            self.blazeface = BlazeFace()        # short range, alone or first
            self.blazeface_full = BlazeFace(reach="full") if detector == "blazeface_auto" else None

    @property
    def predictor(self):
        if self._predictor is None:
            import dlib
            self._predictor = dlib.shape_predictor(self.predictor_path or default_predictor_path())
        return self._predictor

    def _detect_dlib(self, rgb):
        scale = min(1.0, self.max_side / max(rgb.shape[:2]))
        small = rgb if scale == 1.0 else cv2.resize(rgb, None, fx=scale, fy=scale,
                                                    interpolation=cv2.INTER_AREA)
        rects, scores, _ = self.detector.run(small, self.upsample, 0.0)
        return [((r.left() / scale, r.top() / scale, r.right() / scale, r.bottom() / scale), s, None)
                for r, s in zip(rects, scores)]

    def _detect_blazeface(self, rgb):
        """Short range; with `blazeface_auto` also the full range when the short range finds
        no face or only faces under WIDE_SHOT of the photo's longer side (a wide shot or group
        photo: the short range cannot see faces under about 11 %), its new faces merged in
        (overlap IoU > IOU_MERGE = the same face). On GENKI-4K: every photo found (the short range
        alone misses 14), the full range run on 97 of 4,000 (README, "Detector choice")."""
        near = self.blazeface(rgb)
        if self.blazeface_full is None:
            return near
        side = max(rgb.shape[:2])
        if near and max(box[2] - box[0] for box, _, _ in near) >= WIDE_SHOT * side:
            return near
        found = list(near)
        for face in self.blazeface_full(rgb):
            if not found or iou(np.array(face[0]), np.array([f[0] for f in found])).max() <= IOU_MERGE:
                found.append(face)
        return sorted(found, key=lambda face: -face[2])

    def detect(self, rgb):
        """Face boxes in image coordinates with their scores, most confident first."""
        if self.detector_name == "dlib":
            return sorted([(box, score) for box, score, _ in self._detect_dlib(rgb)],
                          key=lambda b: -b[1])
        return [(box, score) for box, _, score in self._detect_blazeface(rgb)]

    def five_point_eyes(self, rgb, box):
        """Eye centres (image-left first) as the midpoints of dlib's 5-point eye corners."""
        import dlib
        if self._five_point is None:
            self._five_point = dlib.shape_predictor(five_point_predictor_path())
        parts = self._five_point(rgb, dlib.rectangle(*(int(round(v)) for v in box))).parts()
        corners = np.array([(p.x, p.y) for p in parts[:4]], np.float64)
        eyes = sorted((corners[0:2].mean(axis=0), corners[2:4].mean(axis=0)), key=lambda e: e[0])
        return np.array(eyes)

    def landmarks(self, rgb, box):
        import dlib
        rect = dlib.rectangle(*(int(round(v)) for v in box))
        shape = self.predictor(rgb, rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)

    def faces(self, rgb):
        if self.detector_name == "dlib":
            found = [(box, None, score) for box, score in self.detect(rgb)]
        else:
            found = self._detect_blazeface(rgb)
        placed = (self.points_model.points_in(rgb, [box for box, _, _ in found])
                  if self.points_model is not None and found else None)
        out = []
        for i, (box, eyes, score) in enumerate(found):
            points = (placed[i] if placed is not None
                      else self.landmarks(rgb, box) if self.want_landmarks else None)
            if eyes is None:
                eyes = (np.array(eye_centres(points)) if points is not None
                        else self.five_point_eyes(rgb, box))
            out.append(Face(box, points, score, eyes))
        return out


def default_predictor_path():
    try:
        import face_recognition_models
    except ImportError:
        raise FerTfError("the face_recognition_models package (dlib's 68-point model) is not "
                         "installed; pip install face_recognition_models") from None
    return face_recognition_models.pose_predictor_model_location()


def five_point_predictor_path():
    default_predictor_path()          # the same package; its error message if it is missing
    import face_recognition_models
    return face_recognition_models.pose_predictor_five_point_model_location()


def eye_centres(landmarks):
    return landmarks[LEFT_EYE].mean(axis=0), landmarks[RIGHT_EYE].mean(axis=0)


def alignment_matrix(points, size):
    """2x3 similarity transform taking the eyes to FER2013's framing in a size x size crop;
    `points` are 68 landmarks or the two eye centres (image-left first)."""
    points = np.asarray(points, np.float64)
    left, right = eye_centres(points) if len(points) == 68 else (points[0], points[1])
    dx, dy = right - left
    angle = np.arctan2(dy, dx)
    scale = EYE_DISTANCE * size / max(np.hypot(dx, dy), 1e-6)
    cos, sin = np.cos(-angle) * scale, np.sin(-angle) * scale
    centre = (left + right) / 2
    target = np.array([EYE_MID_X * size, EYE_LINE_Y * size])
    rotation = np.array([[cos, -sin], [sin, cos]])
    return np.hstack([rotation, (target - rotation @ centre)[:, None]])


def align(rgb, points, size=48, channels=1):
    """Rotate so the eyes are level, scale and crop to FER2013's framing -> uint8 size x size x C;
    `points`: 68 landmarks or the two eye centres."""
    matrix = alignment_matrix(points, size)
    crop = cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_AREA if matrix[0, 0] < 1 else
                          cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if channels == 1:
        crop = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)[:, :, None]
    return crop


def best_face_crop(pipeline, rgb, size, channels, upsample=None):
    """The photo's most confident face aligned at size x size, or None when none is found
    (converters of labelled photos: one face per photo)."""
    pipeline.upsample = (upsample if upsample is not None
                         else int(max(rgb.shape[:2]) < SMALL_IMAGE_SIDE))
    found = pipeline.faces(rgb)
    return align(rgb, found[0].alignment_points, size, channels) if found else None


def transform_points(matrix, points):
    return points @ matrix[:, :2].T + matrix[:, 2]


def centre_crop(rgb, size=64, channels=1):
    """The fallback when no face is found: the central square, resized."""
    h, w = rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = cv2.resize(rgb[top:top + side, left:left + side], (size, size), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)[:, :, None] if channels == 1 else crop
