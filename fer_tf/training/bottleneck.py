"""Bottleneck cache for VGGFace2 feature extraction: run the frozen base once over the 224 records
and store each face's pooled 2048-d feature as a TFRecord, so the head trains on vectors instead
of pushing every face through ResNet50 every epoch.

The cached features see no augmentation (they are computed once, from the unaugmented faces);
that is the price of the speed-up.
"""
import os

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from fer_tf.core import atomic
from fer_tf.training import inputs
from fer_tf.training.config import RunSpec
from fer_tf.data import records
from fer_tf.core.errors import FerTfError
from fer_tf.models import vggface2, vggface2_weights

SPLITS = ("train", "eval", "test")


def feature_example(feature, label, source_row):
    return tf.train.Example(features=tf.train.Features(feature={
        "features": tf.train.Feature(float_list=tf.train.FloatList(value=feature.tolist())),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
        "source/row": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(source_row)])),
    }))


def feature_extractor(num_classes, weights_path, allow_random_init, width=1.0, log=print):
    model = vggface2.build_keras_model(num_classes, "features", width=width)
    vggface2_weights.load_or_refuse(model, weights_path, allow_random_init, log)
    return tf.keras.Model(model.input, model.get_layer("avg_pool").output)


def cache_features(data_dir, out_dir, weights_path=None, allow_random_init=False, width=1.0,
                   batch_size=32, progress=True, log=print):
    manifest = records.read_manifest(data_dir)
    if manifest.kind == "features":
        raise FerTfError(f"--data {data_dir}: already a feature cache; pass the 224 image records")
    label_set = manifest.labels
    extractor = feature_extractor(label_set.num_classes, weights_path, allow_random_init, width, log)
    dim = int(extractor.output.shape[-1])
    with atomic.atomic_directory(out_dir) as tmp:
        splits = {}
        for split in SPLITS:
            files = manifest.split_files(split)
            run = RunSpec(model="vggface2", classes=tuple(label_set.classes),
                          image_size=(224, 224, 3))
            parts = inputs.image_parts(manifest, {"augment": False}, run, training=False)
            ds = inputs.make_dataset(files, parts, training=False, batch_size=batch_size)
            name = records.shard_name(split, 0, 1)
            counts = np.zeros(label_set.num_classes, dtype=np.int64)
            total = manifest.split_count(split)
            with tf.io.TFRecordWriter(os.path.join(tmp, name)) as writer, \
                    tqdm(total=total, desc=f"caching {split}", unit=" faces", disable=not progress) as bar:
                for features, labels in ds:
                    vectors = extractor.predict_on_batch(features["image"])
                    for vector, label, row in zip(vectors, labels.numpy(), features["source_row"].numpy()):
                        writer.write(feature_example(vector, label, row).SerializeToString())
                        counts[label] += 1
                    bar.update(len(labels))
            splits[split] = {"count": int(counts.sum()), "per_class": counts.tolist(), "shards": [name]}
        cache_manifest = records.write_manifest(tmp, records.Manifest(
            dataset=manifest.dataset, kind="features", label_set=manifest.label_set,
            image=manifest.image, splits=splits,
            source={"records": os.path.abspath(data_dir), "records_source": manifest.source,
                    "vggface2_weights": os.path.basename(weights_path) if weights_path else None,
                    "vggface2_weights_sha256": records.sha256_of(weights_path) if weights_path else None},
            options={"width": width, "random_init": not weights_path},
            extra={"feature_dim": dim}))
    return cache_manifest
