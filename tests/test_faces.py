"""The face pipeline: image loading in every common form, and alignment on synthetic faces."""
import io

import numpy as np
import pytest
from PIL import Image

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


@pytest.mark.parametrize("left, right", [((100, 120), (160, 120)),      # level
                                         ((90, 140), (150, 100)),       # tilted ~34 degrees
                                         ((300, 310), (330, 300))])     # small, slightly tilted
def test_alignment_puts_eyes_level_at_fer2013_framing(left, right):
    points = synthetic_landmarks(left, right)
    for size in (48, 224):
        matrix = faces.alignment_matrix(points, size)
        l, r = faces.transform_points(matrix, np.array([left, right], float))
        assert abs(l[1] - r[1]) < 1e-6                                  # level
        assert np.allclose((l + r) / 2, [faces.EYE_MID_X * size, faces.EYE_LINE_Y * size])
        assert np.isclose(r[0] - l[0], faces.EYE_DISTANCE * size)       # FER2013 eye distance


def test_align_draws_the_eyes_where_expected():
    image = np.full((400, 400, 3), 200, np.uint8)
    left, right = (150, 220), (250, 180)
    for x, y in (left, right):
        image[y - 3:y + 4, x - 3:x + 4] = 0                             # two dark eye dots
    crop = faces.align(image, synthetic_landmarks(left, right), size=96, channels=1)
    assert crop.shape == (96, 96, 1)
    ys, xs = np.nonzero(crop[:, :, 0] < 100)
    row = faces.EYE_LINE_Y * 96
    assert abs(ys.mean() - row) < 1.5
    assert abs(xs[xs < 48].mean() - (faces.EYE_MID_X - faces.EYE_DISTANCE / 2) * 96) < 1.5
    assert abs(xs[xs >= 48].mean() - (faces.EYE_MID_X + faces.EYE_DISTANCE / 2) * 96) < 1.5


def encode(image, fmt, **kw):
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def test_load_image_modes_and_exif():
    rgb = Image.fromarray(np.random.RandomState(0).randint(0, 255, (30, 40, 3), np.uint8))
    cases = {
        "gray": encode(rgb.convert("L"), "PNG"),
        "rgba": encode(rgb.convert("RGBA"), "PNG"),
        "palette": encode(rgb.convert("P"), "PNG"),
        "cmyk": encode(rgb.convert("CMYK"), "JPEG"),
        "16bit": encode(Image.fromarray((np.arange(1200).reshape(30, 40) * 50).astype(np.uint16)), "PNG"),
    }
    for name, data in cases.items():
        out = faces.load_image(data)
        assert out.shape == (30, 40, 3) and out.dtype == np.uint8, name
    sixteen = faces.load_image(cases["16bit"])
    assert sixteen.max() == 255 and sixteen.min() == 0                 # range scaled, not clipped
    exif = Image.Exif()
    exif[0x0112] = 6                                                    # rotate 90 CW on display
    rotated = faces.load_image(encode(rgb, "JPEG", exif=exif.tobytes()))
    assert rotated.shape == (40, 30, 3)


@pytest.mark.parametrize("data, reason", [(b"", "empty file"), (b"hello, not an image", "not a readable image")])
def test_bad_images(data, reason):
    with pytest.raises(faces.BadImage, match=reason):
        faces.load_image(data)


def test_truncated_image():
    data = encode(Image.fromarray(np.zeros((200, 200, 3), np.uint8) + 90), "JPEG")
    with pytest.raises(faces.BadImage, match="corrupt or truncated"):
        faces.load_image(data[: len(data) // 3])
