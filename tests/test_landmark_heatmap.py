"""The compact landmark model's parts: the soft-argmax decoder recovers a known sub-pixel peak,
flip test-time averaging is mirror-consistent on a symmetric face, the wing loss is continuous
and logarithmic for small errors; and the shipped export on the sample photo."""
import numpy as np
import pytest
import tensorflow as tf

from conftest import TWO_FACES
from fer_tf import faces, models
from fer_tf.data import ibug300w
from fer_tf.data.ibug300w import MIRROR
from fer_tf.faces import crops
from fer_tf.models import landmark_heatmap
from fer_tf.serving import exported
from fer_tf.training import model_fn

v1 = tf.compat.v1


@pytest.mark.parametrize("peak", [(10.3, 20.75), (7.6, 24.4), (16.0, 16.0)])
def test_soft_argmax_recovers_a_sub_pixel_peak(peak):
    """A symmetric bump (a Gaussian of about two cells) centred between cells decodes to that
    position to within 1/20 pixel (in crop pixels: cell c is centred at 4c + 1.5 for a 128 px
    crop on a 32-cell map)."""
    cx, cy = peak
    ys, xs = np.mgrid[0:32, 0:32].astype(np.float32)
    scores = -0.1 * ((xs - cx) ** 2 + (ys - cy) ** 2)
    maps = np.repeat(scores[None, :, :, None], 68, axis=3)
    with tf.Graph().as_default(), v1.Session() as sess:
        points = sess.run(landmark_heatmap.soft_argmax(tf.constant(maps), size=128))
    expected = (np.array([cx, cy]) * 4 + 1.5) / 128
    np.testing.assert_allclose(points[0, 0], expected, atol=0.05 / 128)


def test_flip_tta_is_mirror_consistent_on_a_symmetric_face():
    """(g(I) + mirror(g(mirror I))) / 2 on a left-right symmetric image: point i is the mirror
    of point MIRROR[i], for any weights (here random ones)."""
    rng = np.random.RandomState(0)
    half = rng.randint(0, 255, (1, 128, 64, 3)).astype(np.float32)
    image = np.concatenate([half, half[:, :, ::-1]], axis=2)
    spec = models.get("landmarks_hm")
    params = spec.resolve_hparams({"width": 0.25})
    with tf.Graph().as_default(), v1.Session() as sess:
        points = spec.build(spec.normalize(tf.constant(image)), 136, False, params)
        sess.run(v1.global_variables_initializer())
        points = sess.run(points).reshape(68, 2)
    np.testing.assert_allclose(points[:, 0], 127 / 128 - points[MIRROR, 0], atol=1e-5)
    np.testing.assert_allclose(points[:, 1], points[MIRROR, 1], atol=1e-5)
    assert points.min() >= 0 and points.max() <= 1


def test_wing_loss_is_continuous_and_logarithmic_near_zero():
    with tf.Graph().as_default(), v1.Session() as sess:
        values = sess.run(model_fn.wing_loss(tf.constant([0.0, 1.0, 9.999, 10.0, 10.001, 30.0])))
    assert values[0] == 0 and abs(values[1] - 10 * np.log(1.5)) < 1e-5
    assert abs(values[2] - values[4]) < 1e-2                    # no jump at w
    assert abs((values[5] - values[4]) - (30 - 10.001)) < 1e-4   # linear beyond w


def test_size_is_within_the_shipping_budget():
    spec = models.get("landmarks_hm")
    with tf.Graph().as_default():
        spec.build(spec.normalize(v1.placeholder(tf.float32, [None, 128, 128, 3])), 136, False,
                   spec.resolve_hparams())
        weights = sum(int(np.prod(v.shape)) for v in v1.trainable_variables())
    assert 0.9e6 < weights < 1.1e6            # width 1; int8 storage: 1.3 MB (<= 10 MB shipped)


def test_the_shipped_model_places_the_sample_faces_points():
    """`models/landmarks` (what `fer-tf landmarks` and `--landmarks cnn` use without flags), on
    both faces of the sample photo through the batched `crops` call: 68 points inside the face's
    crop window, each face's own (not the mean shape in two places), and within 8 % NME (outer
    eye corners) of dlib's predictor on the same box."""
    model = exported.LandmarkModel("landmarks")
    assert model.path == exported.shipped_model("landmarks")
    with open(TWO_FACES, "rb") as f:
        rgb = faces.load_image(f.read())
    pipeline = faces.FacePipeline(upsample=1)
    boxes = [box for box, _ in pipeline.detect(rgb)]
    assert len(boxes) == 2
    points = model.points_in(rgb, boxes)
    assert points.shape == (2, 68, 2)
    for box, placed in zip(boxes, points):
        x0, y0, side = crops.crop_window(box)
        assert (placed >= [x0, y0]).all() and (placed <= [x0 + side, y0 + side]).all()
        assert ibug300w.nme(placed[None], pipeline.landmarks(rgb, box)[None])[0] < 0.08
    assert abs(points[0, :, 0].mean() - points[1, :, 0].mean()) > rgb.shape[1] / 4
