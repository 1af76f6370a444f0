"""The one decode / resize / augment code path shared by training, evaluation and serving.

Images leave here as float32 in [0, 255], HxWxC; each model then applies its own normalisation
inside its model_fn, so a SavedModel fed raw image bytes sees exactly what training saw.
"""
import math

import tensorflow as tf

from fer_tf.data.ibug300w import MIRROR


def decode_image(encoded, height, width, channels):
    """Encoded PNG/JPEG/BMP bytes of any size, grey or colour (alpha dropped) -> float32 HxWxC."""
    image = tf.io.decode_image(encoded, channels=channels, expand_animations=False)
    image = tf.cast(image, tf.float32)
    image = tf.image.resize(image, [height, width], method="bilinear", antialias=True)
    image.set_shape([height, width, channels])
    return image


def _rotate(image, radians):
    """Rotate HxWxC about its centre (bilinear, edges replicated)."""
    height = tf.cast(tf.shape(image)[0], tf.float32)
    width = tf.cast(tf.shape(image)[1], tf.float32)
    cos, sin = tf.cos(radians), tf.sin(radians)
    cx, cy = (width - 1) / 2, (height - 1) / 2
    # Output pixel (x, y) samples input (a0 x + a1 y + a2, b0 x + b1 y + b2): the inverse rotation.
    transform = tf.stack([cos, -sin, cx - cos * cx + sin * cy,
                          sin, cos, cy - sin * cx - cos * cy, 0.0, 0.0])
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=transform[None], output_shape=tf.shape(image)[:2],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST")
    return out[0]


def random_erase(image, probability, area=(0.02, 0.25), aspect=(0.3, 3.3)):
    """Random erasing (Zhong et al. 2017): with `probability`, one rectangle of a random area
    fraction and aspect ratio is filled with uniform noise in [0, 255]."""
    height, width = image.shape[0], image.shape[1]
    fraction = tf.random.uniform([], *area) * height * width
    ratio = tf.exp(tf.random.uniform([], math.log(aspect[0]), math.log(aspect[1])))
    h = tf.clip_by_value(tf.cast(tf.round(tf.sqrt(fraction * ratio)), tf.int32), 1, height)
    w = tf.clip_by_value(tf.cast(tf.round(tf.sqrt(fraction / ratio)), tf.int32), 1, width)
    top = tf.random.uniform([], 0, height - h + 1, tf.int32)
    left = tf.random.uniform([], 0, width - w + 1, tf.int32)
    rows = tf.range(height)[:, None]
    cols = tf.range(width)[None, :]
    inside = (rows >= top) & (rows < top + h) & (cols >= left) & (cols < left + w)
    inside = inside[:, :, None] & (tf.random.uniform([]) < probability)
    return tf.where(inside, tf.random.uniform(tf.shape(image), 0.0, 255.0), image)


def augment(image, pad=4, max_rotation_degrees=10.0, flip=True, brightness=25.0,
            contrast=(0.8, 1.2), crop_size=0, erasing=0.0):
    """Training-only augmentation of a float [0,255] HxWxC image: crop after padding, flip,
    small rotation, brightness and contrast; then optionally a random `crop_size` square crop
    (the output is then crop_size x crop_size) and random erasing."""
    shape = image.shape
    if pad:
        padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
        image = tf.image.random_crop(padded, shape)
    if flip:
        image = tf.image.random_flip_left_right(image)
    if max_rotation_degrees:
        limit = max_rotation_degrees * math.pi / 180.0
        image = _rotate(image, tf.random.uniform([], -limit, limit))
    if brightness:
        image = tf.image.random_brightness(image, brightness)
    if contrast:
        image = tf.image.random_contrast(image, *contrast)
    image = tf.clip_by_value(image, 0.0, 255.0)
    image.set_shape(shape)
    if crop_size:
        image = tf.image.random_crop(image, [crop_size, crop_size, shape[-1]])
    if erasing:
        image = random_erase(image, erasing)
    return image


def augment_with_points(image, points, max_rotation=15.0, scale_range=(0.9, 1.1), max_shift=0.05, seed=None):
    """Landmark training augmentation that moves pixels and points together: flip (with the
    68-point mirror permutation), rotation, scale, shift, colour. image float [0,255] SxSx3,
    points (68, 2) in [0, 1] crop coordinates (pixel u = x * S)."""
    size = float(image.shape[0])
    flip = tf.random.uniform([], seed=seed) < 0.5
    image = tf.cond(flip, lambda: tf.image.flip_left_right(image), lambda: image)
    # Flipping pixel u to S-1-u: the point that was landmark MIRROR[i] becomes landmark i.
    flipped = tf.stack([(size - 1) / size - tf.gather(points, MIRROR)[:, 0],
                        tf.gather(points, MIRROR)[:, 1]], axis=1)
    points = tf.cond(flip, lambda: flipped, lambda: points)
    angle = tf.random.uniform([], -max_rotation, max_rotation) * math.pi / 180
    scale = tf.random.uniform([], *scale_range)
    shift = tf.random.uniform([2], -max_shift, max_shift) * size
    cos, sin = tf.cos(angle), tf.sin(angle)
    centre = (size - 1) / 2
    # Forward, in pixels: p' = C + s R (p - C) + t. The image op needs the inverse (output -> input).
    pixels = points * size - centre
    moved = tf.stack([cos * pixels[:, 0] - sin * pixels[:, 1],
                      sin * pixels[:, 0] + cos * pixels[:, 1]], axis=1) * scale + centre + shift
    m00, m01, m10, m11 = cos / scale, sin / scale, -sin / scale, cos / scale
    ox, oy = centre + shift[0], centre + shift[1]
    transform = tf.stack([m00, m01, centre - m00 * ox - m01 * oy,
                          m10, m11, centre - m10 * ox - m11 * oy, 0.0, 0.0])
    image = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=transform[None], output_shape=tf.shape(image)[:2],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT")[0]
    image = tf.image.random_brightness(image, 25.0)
    image = tf.image.random_contrast(image, 0.8, 1.2)
    image = tf.image.random_saturation(image, 0.8, 1.2)
    image = tf.clip_by_value(image, 0.0, 255.0)
    image.set_shape([int(size), int(size), 3])
    return image, moved / size
