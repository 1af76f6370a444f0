"""The serving input receivers the Estimator exports with: what a SavedModel's signature takes.

- classifiers: `image_bytes`, a batch of PNG/JPEG/BMP strings of any size, grey or colour, decoded
  by the same function training uses;
- landmarks: `image_bytes` (any photo) and an optional face `box`.
"""
import tensorflow as tf

from fer_tf.core import export_format
from fer_tf.data import preprocess

INPUT_KEY = export_format.INPUT_KEY


def serving_input_receiver_fn(image_size):
    """image_bytes: a batch of PNG/JPEG/BMP strings of any size, grey or colour."""
    height, width, channels = image_size

    def receiver():
        image_bytes = tf.compat.v1.placeholder(tf.string, [None], name=INPUT_KEY)
        images = tf.map_fn(lambda b: preprocess.decode_image(b, height, width, channels),
                           image_bytes, fn_output_signature=tf.float32)
        return tf.estimator.export.ServingInputReceiver({"image": images}, {INPUT_KEY: image_bytes})

    return receiver


def landmark_serving_input_receiver_fn(size=128, crop_scale=1.5):
    """image_bytes (any photo) + box (left, top, right, bottom in photo pixels; optional: the
    `image_only` signature uses the whole photo) -> the same square crop as the records."""

    def receiver():
        image_bytes = tf.compat.v1.placeholder(tf.string, [None], name=INPUT_KEY)
        decoded = tf.map_fn(lambda b: tf.shape(tf.io.decode_image(b, channels=3, expand_animations=False))[:2],
                            image_bytes, fn_output_signature=tf.int32)
        hw = tf.cast(decoded, tf.float32)
        whole = tf.stack([tf.zeros_like(hw[:, 0]), tf.zeros_like(hw[:, 0]), hw[:, 1] - 1, hw[:, 0] - 1], axis=1)
        box = tf.compat.v1.placeholder_with_default(whole, [None, 4], name="box")

        def crop(args):
            data, b, shape = args
            image = tf.cast(tf.io.decode_image(data, channels=3, expand_animations=False), tf.float32)
            height, width = shape[0], shape[1]
            side = tf.maximum(b[2] - b[0], b[3] - b[1]) * crop_scale
            x0 = (b[0] + b[2]) / 2 - side / 2
            y0 = (b[1] + b[3]) / 2 - side / 2
            # crop_and_resize samples output pixel i at y1*(H-1) + i*(y2-y1)*(H-1)/(size-1);
            # choose y1, y2 so that this is y0 + i*side/size, as in the records' crops.
            step = side / size
            norm = tf.stack([y0 / (height - 1), x0 / (width - 1),
                             (y0 + step * (size - 1)) / (height - 1),
                             (x0 + step * (size - 1)) / (width - 1)])
            out = tf.image.crop_and_resize(image[None], norm[None], [0], [size, size],
                                           extrapolation_value=0.0)[0]
            return out, tf.stack([x0, y0, side])

        crops, windows = tf.map_fn(crop, (image_bytes, box, hw),
                                   fn_output_signature=(tf.float32, tf.float32))
        crops.set_shape([None, size, size, 3])
        features = {"image": crops, "window": windows}
        return tf.estimator.export.ServingInputReceiver(
            features, {INPUT_KEY: image_bytes, "box": box},
            receiver_tensors_alternatives={"image_only": {INPUT_KEY: image_bytes}})

    return receiver
