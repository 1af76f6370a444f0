"""input_fn for landmark records, with augmentation that moves image and points together:
horizontal flip (with the 68-point mirror permutation), rotation, scale, translation, colour."""
import math

import tensorflow as tf

from fer_tf import preprocess, records
from fer_tf.datasets.ibug300w import MIRROR


def parse(serialized, size):
    parsed = tf.io.parse_single_example(serialized, records.landmark_feature_spec())
    image = preprocess.decode_image(parsed["image/encoded"], size, size, 3)
    features = {"image": image, "window": parsed["window"], "box": parsed["box"],
                "name": parsed["name"]}
    return features, tf.reshape(parsed["points"], [68, 2])


def augment(image, points, max_rotation=15.0, scale_range=(0.9, 1.1), max_shift=0.05, seed=None):
    """image float [0,255] SxSx3, points (68, 2) in [0, 1] crop coordinates (pixel u = x * S)."""
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


def input_fn(mode, params, input_context=None):
    manifest = records.read_manifest(params["data_dir"])
    training = mode == tf.estimator.ModeKeys.TRAIN
    split = params.get("split") or ("train" if training else "eval")
    files = records.split_files(params["data_dir"], manifest, split)
    size = params["image_size"][0]
    ds = tf.data.Dataset.from_tensor_slices(sorted(files))
    if input_context and input_context.num_input_pipelines > 1:
        ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=4,
                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=not training)
    if training:
        ds = ds.shuffle(params.get("shuffle_buffer", 2000), seed=params.get("seed")).repeat()
    ds = ds.map(lambda s: parse(s, size), num_parallel_calls=tf.data.AUTOTUNE)
    if training and params.get("augment", True):
        def aug(features, points):
            image, points = augment(features["image"], points)
            return {**features, "image": image}, points
        ds = ds.map(aug, num_parallel_calls=tf.data.AUTOTUNE)
    batch = params["batch_size"]
    if input_context:
        batch = input_context.get_per_replica_batch_size(batch)
    return ds.batch(batch, drop_remainder=training).prefetch(tf.data.AUTOTUNE)
