"""Faces in photos, below the data layer (converters crop photos with it, predict aligns with it):

- `pipeline`: image loading (any format, EXIF, 16-bit, alpha), detection (dlib or BlazeFace),
  dlib's 68 landmarks, FER2013-framed alignment at any output size;
- `blazeface`: MediaPipe's short- and full-range detectors through tf.lite, with their eye
  keypoints;
- `crops`: the square landmark crop around a face box and points in crop coordinates.

The pipeline's names are re-exported here: `from fer_tf import faces; faces.load_image(...)`.
"""
from fer_tf.faces.pipeline import (ALIGN_POINTS, DEFAULT_DETECTOR, DETECTORS, EYE_DISTANCE, EYE_LINE_Y, EYE_MID_X,
                                   IMAGE_EXTENSIONS, SMALL_IMAGE_SIDE, BadImage, Face,
                                   FacePipeline, align, alignment_matrix, best_face_crop,
                                   centre_crop, default_predictor_path, eye_centres, load_image,
                                   pil_to_rgb, transform_points)

__all__ = ["ALIGN_POINTS", "DEFAULT_DETECTOR", "DETECTORS", "EYE_DISTANCE", "EYE_LINE_Y", "EYE_MID_X", "IMAGE_EXTENSIONS",
           "SMALL_IMAGE_SIDE", "BadImage", "Face", "FacePipeline", "align", "alignment_matrix",
           "best_face_crop", "centre_crop", "default_predictor_path", "eye_centres",
           "load_image", "pil_to_rgb", "transform_points"]
