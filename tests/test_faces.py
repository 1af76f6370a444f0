"""The face pipeline: image loading in every common form, and alignment on synthetic faces."""
import io

import numpy as np
import pytest
from PIL import Image

from conftest import TWO_FACES
from fer_tf import faces


def synthetic_landmarks(left_eye, right_eye):
    """68 points whose eye rings are centred on the given points (the rest on a line below)."""
    points = np.zeros((68, 2))
    points[:] = (np.array(left_eye) + np.array(right_eye)) / 2 + [0, 40]
    ring = np.stack([np.cos(np.linspace(0, 2 * np.pi, 6, endpoint=False)),
                     np.sin(np.linspace(0, 2 * np.pi, 6, endpoint=False))], axis=1) * 4
    points[36:42] = np.array(left_eye) + ring
    points[42:48] = np.array(right_eye) + ring
    return points


# FER2013's framing, measured on 434 FER2013 faces (written here, not read from the code under
# test, so a wrong constant there fails): the eye line at 0.385 of the height, the eye midpoint at
# 0.495 of the width, the eyes 0.36 of the width apart.
EYE_LINE_Y, EYE_MID_X, EYE_DISTANCE = 0.385, 0.495, 0.36


@pytest.mark.parametrize("left, right", [((100, 120), (160, 120)),      # level
                                         ((90, 140), (150, 100)),       # tilted ~34 degrees
                                         ((300, 310), (330, 300))])     # small, slightly tilted
def test_alignment_puts_eyes_level_at_fer2013_framing(left, right):
    points = synthetic_landmarks(left, right)
    for size in (48, 224):
        matrix = faces.alignment_matrix(points, size)
        l, r = faces.transform_points(matrix, np.array([left, right], float))
        assert abs(l[1] - r[1]) < 1e-6                                  # level
        assert np.allclose((l + r) / 2, [EYE_MID_X * size, EYE_LINE_Y * size])
        assert np.isclose(r[0] - l[0], EYE_DISTANCE * size)             # FER2013 eye distance


def test_align_draws_the_eyes_where_expected():
    image = np.full((400, 400, 3), 200, np.uint8)
    left, right = (150, 220), (250, 180)
    for x, y in (left, right):
        image[y - 3:y + 4, x - 3:x + 4] = 0                             # two dark eye dots
    crop = faces.align(image, synthetic_landmarks(left, right), size=96, channels=1)
    assert crop.shape == (96, 96, 1)
    ys, xs = np.nonzero(crop[:, :, 0] < 100)
    row = EYE_LINE_Y * 96
    assert abs(ys.mean() - row) < 1.5
    assert abs(xs[xs < 48].mean() - (EYE_MID_X - EYE_DISTANCE / 2) * 96) < 1.5
    assert abs(xs[xs >= 48].mean() - (EYE_MID_X + EYE_DISTANCE / 2) * 96) < 1.5


def encode(image, fmt, **kw):
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def test_grey_palette_and_cmyk_keep_their_pixels():
    rng = np.random.RandomState(0)
    grey = rng.randint(0, 255, (30, 40), np.uint8)
    out = faces.load_image(encode(Image.fromarray(grey, "L"), "PNG"))
    assert out.shape == (30, 40, 3) and out.dtype == np.uint8
    assert (out == grey[..., None]).all()                               # replicated, unchanged
    colours = np.array([[200, 30, 30], [30, 200, 30]], np.uint8)
    image = Image.fromarray(colours[(np.arange(40) >= 20).astype(int)][None].repeat(30, 0))
    palette = faces.load_image(encode(image.convert("P", palette=Image.ADAPTIVE, colors=4), "PNG"))
    np.testing.assert_array_equal(palette[0, [0, 39]], colours)
    cmyk = faces.load_image(encode(image.convert("CMYK"), "JPEG", quality=95))
    assert np.abs(cmyk[15, [5, 35]].astype(int) - colours).max() < 30      # colours survive CMYK


def test_sixteen_bit_is_scaled_not_clipped():
    values = (np.arange(1200).reshape(30, 40) * 50).astype(np.uint16)   # 0 .. 59,950
    out = faces.load_image(encode(Image.fromarray(values), "PNG"))[..., 0]
    expected = np.round(values * (255.0 / values.max())).astype(np.uint8)
    np.testing.assert_array_equal(out, expected)                        # clipping: all 255 but one
    assert len(np.unique(out)) > 200


def test_alpha_is_composited_on_white():
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[..., 0] = 200                                                  # red ...
    rgba[:, :5, 3] = 255                                                # ... opaque on the left
    rgba[:, 5:, 3] = 0                                                  # ... transparent right
    out = faces.load_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert (out[:, :5] == [200, 0, 0]).all() and (out[:, 5:] == 255).all()


@pytest.mark.parametrize("orientation, corner", [(1, (0, 0)), (3, (-1, -1)), (6, (0, -1)),
                                                 (8, (-1, 0))])
def test_exif_orientation_turns_the_picture(orientation, corner):
    """A 30x40 picture with a bright block in its top-left corner, as the camera stored it;
    orientation 6 means "rotate 90 degrees clockwise to display", 8 counter-clockwise, 3 180."""
    stored = np.zeros((30, 40, 3), np.uint8)
    stored[:8, :8] = 255
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = faces.load_image(encode(Image.fromarray(stored), "JPEG", exif=exif.tobytes(), quality=95))
    assert out.shape == ((30, 40, 3) if orientation in (1, 3) else (40, 30, 3))
    y, x = corner
    assert out[y, x].mean() > 200                                       # the block is there ...
    assert out[-1 - y if y >= 0 else 0, -1 - x if x >= 0 else 0].mean() < 50   # ... not opposite


@pytest.mark.parametrize("data, reason", [(b"", "empty file"), (b"hello, not an image", "not a readable image")])
def test_bad_images(data, reason):
    with pytest.raises(faces.BadImage, match=reason):
        faces.load_image(data)


def test_truncated_image():
    data = encode(Image.fromarray(np.zeros((200, 200, 3), np.uint8) + 90), "JPEG")
    with pytest.raises(faces.BadImage, match="corrupt or truncated"):
        faces.load_image(data[: len(data) // 3])


def test_the_command_line_offers_every_detector_with_the_pipeline_default_first():
    from fer_tf.apps.cli import flags
    assert flags.DETECTORS == faces.DETECTORS and flags.DETECTORS[0] == faces.DEFAULT_DETECTOR
    assert faces.DEFAULT_DETECTOR == "blazeface_auto"


@pytest.mark.parametrize("scene", ["photo", "close-up"])
@pytest.mark.parametrize("detector", faces.DETECTORS)
def test_each_detector_finds_both_faces_and_their_eyes(detector, scene):
    """The sample photo, and two upscaled FER2013 faces filling a 500x300 grey scene (the
    full-range BlazeFace scores one of them 0.38: the short range's close-ups complete it)."""
    import cv2
    from conftest import TWO_FACES
    from test_predict import face_scene
    rgb = (faces.load_image(TWO_FACES) if scene == "photo"
           else cv2.cvtColor(face_scene(), cv2.COLOR_GRAY2RGB))
    reference = faces.FacePipeline(detector="dlib").faces(rgb)
    found = faces.FacePipeline(detector=detector, landmarks=False).faces(rgb)
    assert len(found) == len(reference) == 2
    for face in found:
        match = min(reference, key=lambda r: abs(r.box[0] - face.box[0]))
        eye_distance = np.linalg.norm(match.eyes[1] - match.eyes[0])
        # Each eye within 20 % of the eye distance of the 68-point eye centres (BlazeFace's eye
        # keypoints are pupils, dlib's centres the mean of six lid points).
        assert np.abs(face.eyes - match.eyes).max() < 0.2 * eye_distance
        assert face.eyes[0][0] < face.eyes[1][0]                        # image-left eye first
    if detector == "blazeface":
        assert all(f.landmarks is None for f in found)                  # no 68-point model loaded


def test_blazeface_anchors_and_weighted_nms():
    from fer_tf.faces import blazeface
    grid = blazeface.anchors()
    assert grid.shape == (896, 2) and grid.min() > 0 and grid.max() < 1
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], float)
    points = np.zeros((3, 6, 2))
    points[1] += 3
    merged = blazeface.weighted_nms(boxes, points, np.array([0.9, 0.6, 0.8]))
    assert len(merged) == 2 and merged[0][2] == 0.9
    np.testing.assert_allclose(merged[0][0], (boxes[0] * 0.9 + boxes[1] * 0.6) / 1.5)
    np.testing.assert_allclose(merged[0][1], np.full((6, 2), 3 * 0.6 / 1.5))


def test_blazeface_auto_adds_the_full_range_for_the_small_faces_of_a_wide_photo():
    """The sample photo's two faces shrunk to about 46 px in a 640x480 scene (a group photo's
    faces): beyond the short-range model's reach, found by the full-range one (2,304 anchors on
    one 48x48 grid) with their eyes inside their boxes; close-ups never run it."""
    import cv2
    from conftest import TWO_FACES
    from fer_tf.faces import blazeface
    assert blazeface.anchors(192, (4,), 1).shape == (48 * 48, 2)
    rgb = faces.load_image(TWO_FACES)
    small = cv2.resize(rgb, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    scene = np.full((480, 640, 3), 128, np.uint8)
    scene[160:160 + small.shape[0], 213:213 + small.shape[1]] = small
    assert faces.FacePipeline(detector="blazeface", landmarks=False).faces(scene) == []
    auto = faces.FacePipeline(detector="blazeface_auto", landmarks=False)
    found = auto.faces(scene)
    assert len(found) == 2
    for face in found:
        left, top, right, bottom = face.box
        assert 30 < right - left < 70
        assert (face.eyes[:, 0] > left).all() and (face.eyes[:, 0] < right).all()
        assert (face.eyes[:, 1] > top).all() and (face.eyes[:, 1] < bottom).all()
    # The sample photo itself (faces a quarter of its width): the short range only.
    def never(_):
        raise AssertionError("the full range ran on a close-up")
    auto.blazeface_full = never
    assert len(auto.faces(rgb)) == 2


def test_five_point_alignment_puts_the_eyes_where_68_points_do():
    """dlib's 5-point predictor (eye corners) places each eye centre within 3 % of the eye
    distance of the 68-point centres, and loads no 68-point model."""
    from conftest import TWO_FACES
    rgb = faces.load_image(TWO_FACES)
    full = faces.FacePipeline(upsample=1).faces(rgb)
    five = faces.FacePipeline(upsample=1, landmarks=False, align_points=5)
    quick = five.faces(rgb)
    assert len(full) == len(quick) == 2 and five._predictor is None
    for a, b in zip(full, quick):
        assert b.landmarks is None and b.eyes.shape == (2, 2)
        distance = np.linalg.norm(a.eyes[1] - a.eyes[0])
        assert np.abs(a.eyes - b.eyes).max() < 0.03 * distance


def test_dlib_boxes_of_a_photo_over_1024_px_are_mapped_back_to_its_pixels():
    """Photos over 1,024 px are downscaled for dlib's detector and the boxes scaled back: the same
    photo at 6x (2,142 px wide) gives 6x the boxes of the original, within the resampling."""
    import cv2
    photo = faces.load_image(TWO_FACES)
    big = cv2.resize(photo, None, fx=6, fy=6, interpolation=cv2.INTER_CUBIC)
    assert max(big.shape[:2]) == 2142
    pipeline = faces.FacePipeline(detector="dlib", upsample=1, landmarks=False, align_points=5)
    small_boxes = sorted(box for box, _ in pipeline.detect(photo))
    big_boxes = sorted(box for box, _ in faces.FacePipeline(detector="dlib", landmarks=False,
                                                            align_points=5).detect(big))
    assert len(small_boxes) == len(big_boxes) == 2
    for small, large in zip(small_boxes, big_boxes):
        width = small[2] - small[0]
        np.testing.assert_allclose(np.array(large) / 6, small, atol=0.2 * width)


def test_an_image_over_the_pixel_limit_is_refused_from_its_header():
    data = io.BytesIO()
    Image.new("L", (4000, 3000)).save(data, "PNG")
    with pytest.raises(faces.BadImage, match="4000x3000 pixels is over the limit of 10,000,000"):
        faces.load_image(data.getvalue(), max_pixels=10_000_000)
    assert faces.load_image(data.getvalue(), max_pixels=12_000_000).shape == (3000, 4000, 3)
