"""TensorFlow Lite export of a fer-tf classifier, and a check of its agreement with the SavedModel.

TFLite has no image-decoding ops, so the .tflite model takes what the SavedModel's decode step
produces — a float32 [1, H, W, C] face in [0, 255] — and returns the class probabilities; the
label set and input size are written beside it (`NAME.json`). The graph is rebuilt from the
shared model_fn with the export's weights, so the two cannot drift.
"""
import json
import os

import numpy as np
import tensorflow as tf

from fer_tf.core import atomic
from fer_tf.data import preprocess
from fer_tf.data import records
from fer_tf.serving import exported, rebuild

v1 = tf.compat.v1


def convert(model_path, out_file):
    source = exported.resolve_export(model_path, "--model-dir")
    meta = exported.read_meta(source)
    with tf.Graph().as_default():
        image = v1.placeholder(tf.float32, [1, *meta.image_size], name="image")
        probabilities, _ = rebuild.probabilities_from_faces(meta, image)   # TFLite: no smile output
        with v1.Session() as sess:
            rebuild.load_weights(sess, {"": rebuild.weight_source(source)})
            converter = v1.lite.TFLiteConverter.from_session(sess, [image], [probabilities])
            flatbuffer = converter.convert()
    with atomic.atomic_file(out_file, "wb") as f:
        f.write(flatbuffer)
    sidecar = {"model": meta.model, "label_set": meta.label_set, "image_size": list(meta.image_size)}
    sidecar.update(input="image: float32 [1, H, W, C] in [0, 255]", output="probabilities",
                   source=os.path.abspath(source))
    atomic.write_json(os.path.splitext(out_file)[0] + ".json", sidecar)
    return out_file


class TFLiteModel:
    def __init__(self, path):
        self.interpreter = tf.lite.Interpreter(model_path=path)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.output = self.interpreter.get_output_details()[0]["index"]

    def predict_one(self, image):
        self.interpreter.set_tensor(self.input, image[None].astype(np.float32))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output)[0]


def agreement(tflite_path, model_path, data_dir, split="test", limit=None):
    """Top-1 agreement and the largest probability difference vs the SavedModel on a split."""
    saved = exported.ExportedModel(model_path, "--model-dir")
    lite = TFLiteModel(tflite_path)
    height, width, channels = saved.image_size
    same = total = 0
    max_diff = 0.0
    for encoded, _ in records.iter_split(data_dir, split, 64):
        reference = saved.predict(encoded)
        for png, ref in zip(encoded, reference):
            image = preprocess.decode_image(tf.constant(png), height, width, channels).numpy()
            probs = lite.predict_one(image)
            same += int(probs.argmax() == ref.argmax())
            max_diff = max(max_diff, float(np.abs(probs - ref).max()))
            total += 1
            if limit and total >= limit:
                return {"faces": total, "top1_agreement": same / total, "max_prob_diff": max_diff}
    return {"faces": total, "top1_agreement": same / total, "max_prob_diff": max_diff}


def read_sidecar(path):
    with open(os.path.splitext(path)[0] + ".json") as f:
        return json.load(f)



