"""Face crops for the landmark CNN and the way back: a square crop around a face box, points in
crop-normalised coordinates ([0, 1] across the crop), and consistent augmentation of crop and points.
"""
import cv2
import numpy as np

CROP_SCALE = 1.5      # crop side = 1.5 x the larger side of the face box (room for jaw and brows)
CROP_SIZE = 128


def crop_window(box, scale=CROP_SCALE):
    """(left, top, right, bottom) -> square window (x0, y0, side) centred on the box."""
    left, top, right, bottom = box
    side = max(right - left, bottom - top) * scale
    cx, cy = (left + right) / 2, (top + bottom) / 2
    return cx - side / 2, cy - side / 2, side


def crop_matrix(window, size=CROP_SIZE):
    """2x3 affine taking image pixels to crop pixels."""
    x0, y0, side = window
    s = size / side
    return np.array([[s, 0, -x0 * s], [0, s, -y0 * s]])


def crop_face(rgb, window, size=CROP_SIZE):
    """The square `window` of an RGB photo at size x size: the records' crops and the exported
    model's `crops` input are made by this one call (outside the photo: black)."""
    return cv2.warpAffine(rgb, crop_matrix(window, size), (size, size), flags=cv2.INTER_AREA,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def to_crop_coords(points, window):
    """Image pixels -> [0, 1] across the crop: crop pixel u = (x - x0) * size / side, which is
    where cv2.warpAffine(crop_matrix) puts image pixel x."""
    x0, y0, side = window
    return (np.asarray(points) - [x0, y0]) / side


def to_image_coords(normalised, window):
    x0, y0, side = window
    return np.asarray(normalised) * side + [x0, y0]


def box_of(points):
    return (points[:, 0].min(), points[:, 1].min(), points[:, 0].max(), points[:, 1].max())


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])
    return inter / max(area(a) + area(b) - inter, 1e-9)
