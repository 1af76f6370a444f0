"""The landmark crop geometry (fer_tf/faces/crops.py) with numbers worked out by hand: the square
window around a face box, the affine into the crop, coordinates both ways, a crop's pixels,
a point set's box and the overlap of two boxes."""
import numpy as np
import pytest

from fer_tf.faces import crops


def test_the_window_is_a_square_of_1_5_times_the_longer_side_centred_on_the_box():
    # box 100..140 wide (40) and 50..110 tall (60): side 90, centre (120, 80)
    assert crops.crop_window((100, 50, 140, 110)) == pytest.approx((75.0, 35.0, 90.0))
    assert crops.crop_window((100, 50, 140, 110), scale=1.0) == pytest.approx((90.0, 50.0, 60.0))
    assert crops.crop_window((0, 0, 80, 20)) == pytest.approx((-20.0, -50.0, 120.0))


def test_the_affine_maps_the_window_onto_the_crop():
    matrix = crops.crop_matrix((75.0, 35.0, 90.0), size=180)
    np.testing.assert_allclose(matrix, [[2.0, 0.0, -150.0], [0.0, 2.0, -70.0]])
    corners = np.array([[75.0, 35.0, 1.0], [165.0, 125.0, 1.0]])
    np.testing.assert_allclose(corners @ matrix.T, [[0, 0], [180, 180]])
    assert crops.crop_matrix((0.0, 0.0, 64.0)).tolist() == [[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]]


def test_coordinates_go_into_the_crop_and_back():
    window = (10.0, 20.0, 50.0)
    points = np.array([[10.0, 20.0], [60.0, 70.0], [35.0, 30.0]])
    inside = crops.to_crop_coords(points, window)
    np.testing.assert_allclose(inside, [[0.0, 0.0], [1.0, 1.0], [0.5, 0.2]])
    np.testing.assert_allclose(crops.to_image_coords(inside, window), points)


def test_a_crop_puts_each_pixel_where_the_coordinates_say_and_black_outside():
    rgb = np.zeros((100, 100, 3), np.uint8)
    rgb[40:44, 60:64] = 255                      # a bright 4x4 block at x 60..63, y 40..43
    window = (50.0, 30.0, 32.0)                  # side 32 -> 64 px: 2x
    crop = crops.crop_face(rgb, window, size=64)
    assert crop.shape == (64, 64, 3) and crop.dtype == np.uint8
    # crop pixel u samples the photo at x = 50 + u / 2: the block's full-brightness pixels are
    # u = 20..26 (x 60..63); u = 19 and 27 fall half on it.
    ys, xs = np.nonzero(crop[:, :, 0] > 200)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (20, 26, 20, 26)
    outside = crops.crop_face(rgb + 50, (90.0, 90.0, 20.0), size=20)   # half beyond the photo
    assert outside[:9, :9].min() == 50 and outside[11:, 11:].max() == 0


def test_box_of_points_and_iou():
    points = np.array([[3.0, 9.0], [7.0, 1.0], [5.0, 4.0]])
    assert crops.box_of(points) == (3.0, 1.0, 7.0, 9.0)
    assert crops.iou((0, 0, 10, 10), (0, 0, 10, 10)) == pytest.approx(1.0)
    assert crops.iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert crops.iou((0, 0, 10, 10), (0, 5, 10, 20)) == pytest.approx(50 / 200)
    assert crops.iou((0, 0, 4, 8), (2, 6, 6, 9)) == pytest.approx(4 / (32 + 12 - 4))
    assert crops.iou((2, 6, 6, 9), (0, 0, 4, 8)) == pytest.approx(4 / 40)
    assert crops.iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert crops.iou((0, 0, 10, 10), (10, 0, 20, 10)) == 0.0            # touching edges
    assert crops.iou((5, 5, 5, 5), (5, 5, 5, 5)) == 0.0                 # empty boxes: no division by 0


def test_the_constants_are_the_documented_ones():
    assert crops.CROP_SCALE == 1.5 and crops.CROP_SIZE == 128
    assert crops.crop_face(np.zeros((10, 10, 3), np.uint8), (0.0, 0.0, 10.0)).shape == (128, 128, 3)


def test_halves_and_ratios_that_are_not_whole_numbers():
    # box 101..140 (39 wide) and 51..112 (61 tall): side 91.5, centre (120.5, 81.5)
    assert crops.crop_window((101, 51, 140, 112)) == pytest.approx((74.75, 35.75, 91.5))
    # wider than tall: the width decides the side
    assert crops.crop_window((3, 10, 13, 14), scale=1.0) == pytest.approx((3.0, 7.0, 10.0))
    assert crops.crop_matrix((0.0, 0.0, 100.0), size=128)[0, 0] == pytest.approx(1.28)
    # float boxes, and overlaps smaller than a pixel
    assert crops.iou((0.0, 0.0, 0.5, 0.5), (0.0, 0.0, 0.5, 0.5)) == pytest.approx(1.0)
    assert crops.iou((0, 0, 10, 10), (0, 9.5, 10, 20)) == pytest.approx(5 / 200)
    assert crops.iou((0, 0, 10, 10), (9.5, 0, 20, 10)) == pytest.approx(5 / 200)
    assert crops.iou((0.5, 0.0, 10.5, 4.0), (0.5, 0.0, 10.5, 4.0)) == pytest.approx(1.0)
    # apart along one axis only: no overlap, whatever the other axis does
    assert crops.iou((0, 0, 10, 10), (0, 20, 10, 30)) == 0.0
    assert crops.iou((0, 0, 10, 10), (20, 0, 30, 10)) == 0.0
