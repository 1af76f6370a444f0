"""The one input pipeline: list shards -> shard by input_context -> shuffle files -> interleave
-> shuffle -> parse -> resample -> decode -> augment -> batch -> prefetch, with the task's parts
(parse, decode, augment, resample) plugged in, and a synthetic input_fn for benchmarks.

Parts per kind of record folder (`PARTS`):
- images: encoded faces with a label (and FER+ votes); decoded after resampling, so dropped faces
  are never decoded; augmented (crops, erasing, ...) for training;
- features: cached bottleneck vectors; nothing to decode or augment;
- landmarks: 128 px crops with 68 points; decoded while parsing, augmented together.
"""
import dataclasses

import tensorflow as tf

from fer_tf.data import preprocess, records, soft_labels

TRAIN = tf.estimator.ModeKeys.TRAIN


@dataclasses.dataclass(frozen=True)
class Parts:
    parse: callable                 # serialized -> (features, label)
    decode: callable = None         # (features, label) -> (features, label)
    augment: callable = None        # training only
    resample: callable = None       # dataset -> dataset, training only


def image_parts(manifest, params, run, training):
    spec = records.feature_spec(manifest.has_votes)
    height, width, channels = run.image_size
    # Distillation: the teacher's probabilities, looked up by the face's source row.
    teacher = None
    if training and run.teacher:
        teacher = tf.constant(soft_labels.lookup_table(run.teacher))

    def parse(serialized):
        parsed = tf.io.parse_single_example(serialized, spec)
        features = {"encoded": parsed["image/encoded"], "source_row": parsed["source/row"]}
        if "ferplus/votes" in parsed:
            features["votes"] = tf.cast(parsed["ferplus/votes"], tf.float32)
        if teacher is not None:
            features["teacher"] = tf.gather(teacher, parsed["source/row"])
        return features, tf.cast(parsed["label"], tf.int32)

    def decode(features, label):
        features = dict(features)
        features["image"] = preprocess.decode_image(features.pop("encoded"), height, width, channels)
        return features, label

    def augment(features, label):
        image = preprocess.augment(features["image"], crop_size=params["crop_size"],
                                   erasing=params["random_erasing"])
        return {**features, "image": image}, label

    resample = None
    if params.get("balanced_sampling"):
        counts = manifest.split_per_class(run.train_split)
        resample = lambda ds: balanced(ds, counts, run.seed)  # noqa: E731
    return Parts(parse, decode, augment if params["augment"] else None, resample)


def feature_parts(manifest, params, run, training):
    spec = {"features": tf.io.FixedLenFeature([manifest.feature_dim], tf.float32),
            "label": tf.io.FixedLenFeature([], tf.int64),
            "source/row": tf.io.FixedLenFeature([], tf.int64)}

    def parse(serialized):
        parsed = tf.io.parse_single_example(serialized, spec)
        return ({"features": parsed["features"], "source_row": parsed["source/row"]},
                tf.cast(parsed["label"], tf.int32))

    return Parts(parse)


def landmark_parts(manifest, params, run, training):
    size = run.image_size[0]

    def parse(serialized):
        parsed = tf.io.parse_single_example(serialized, records.landmark_feature_spec())
        image = preprocess.decode_image(parsed["image/encoded"], size, size, 3)
        features = {"image": image, "window": parsed["window"], "box": parsed["box"],
                    "name": parsed["name"]}
        return features, tf.reshape(parsed["points"], [68, 2])

    def augment(features, points):
        image, points = preprocess.augment_with_points(features["image"], points)
        return {**features, "image": image}, points

    return Parts(parse, augment=augment if params["augment"] else None)


PARTS = {"images": image_parts, "features": feature_parts, "landmarks": landmark_parts}


def resample_target(counts):
    """Uniform over the classes the training split has; 0 for a class it lacks (rejection
    resampling cannot make examples of a class out of none)."""
    present = sum(1 for c in counts if c)
    return [1.0 / present if c else 0.0 for c in counts]


def balanced(ds, counts, seed=None):
    """Rejection-resample the stream to a uniform class distribution (training only);
    `counts` are the training split's examples per class."""
    initial = [c / sum(counts) for c in counts]
    return ds.rejection_resample(lambda f, label: label,
                                 initial_dist=initial, target_dist=resample_target(counts),
                                 seed=seed).map(lambda label, pair: pair)


def make_dataset(files, parts, *, training, batch_size, shuffle_buffer=10000, input_context=None,
                 seed=None, skip_corrupt=False):
    num_files = len(files)
    files = tf.data.Dataset.from_tensor_slices(sorted(files))
    if input_context and input_context.num_input_pipelines > 1:
        files = files.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    if training:
        files = files.shuffle(num_files, seed=seed)
    # With skip_corrupt a damaged shard ends at its first bad record; the other shards go on.
    read = ((lambda f: tf.data.TFRecordDataset(f).ignore_errors()) if skip_corrupt
            else tf.data.TFRecordDataset)
    ds = files.interleave(read, cycle_length=4, num_parallel_calls=tf.data.AUTOTUNE,
                          deterministic=not training)
    if training:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True).repeat()
    ds = ds.map(parts.parse, num_parallel_calls=tf.data.AUTOTUNE)
    if training and parts.resample:
        ds = parts.resample(ds)
    if parts.decode:
        ds = ds.map(parts.decode, num_parallel_calls=tf.data.AUTOTUNE)
    if skip_corrupt:
        ds = ds.ignore_errors()   # records whose bytes pass the CRC but do not parse or decode
    if training and parts.augment:
        ds = ds.map(parts.augment, num_parallel_calls=tf.data.AUTOTUNE)
    if input_context:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    ds = ds.batch(batch_size, drop_remainder=training)
    return ds.prefetch(tf.data.AUTOTUNE)


def input_fn(mode, params, run, manifest, input_context=None, split=None, shuffle_buffer=10000):
    """Estimator input_fn over the record folder `manifest` (records.Manifest, read once by the
    caller): the training split for TRAIN, the eval split otherwise (or `split`); the folder's
    kind chooses the parts."""
    training = mode == TRAIN
    split = split or (run.train_split if training else run.eval_split)
    files = manifest.split_files(split)
    parts = PARTS[manifest.kind](manifest, params, run, training)
    return make_dataset(files, parts, training=training, batch_size=params["batch_size"],
                        shuffle_buffer=shuffle_buffer, input_context=input_context,
                        seed=run.seed, skip_corrupt=run.skip_corrupt)


def synthetic_input_fn(run, batch_size):
    """Random faces and labels of the run's shape, repeated from memory: benchmarks of the
    model and the Estimator without any record folder (tensorflow/models' synthetic input)."""
    height, width, channels = run.image_size

    def input_fn():
        images = tf.random.uniform([batch_size, height, width, channels], 0, 255, seed=run.seed)
        labels = tf.random.uniform([batch_size], 0, len(run.classes), tf.int32, seed=run.seed)
        return tf.data.Dataset.from_tensors(({"image": images}, labels)).repeat()

    return input_fn
