"""input_fn on tf.data: list shards -> shard by input_context -> interleave -> shuffle -> parse ->
decode -> augment (training only) -> batch -> prefetch."""
import tensorflow as tf

from fer_tf import preprocess, records

MODE_TO_SPLIT = {tf.estimator.ModeKeys.TRAIN: "train", tf.estimator.ModeKeys.EVAL: "eval"}
MODE_TO_SPLIT_NAMES = {"train": "train", "eval": "eval", "test": "test"}


def parse_fn(manifest):
    """Serialized example -> (raw features with the encoded image, label); decoding comes later
    so that resampling can drop faces before paying for their decode."""
    spec = records.feature_spec(manifest.get("has_votes", False))

    def parse(serialized):
        parsed = tf.io.parse_single_example(serialized, spec)
        features = {"encoded": parsed["image/encoded"], "source_row": parsed["source/row"]}
        if "ferplus/votes" in parsed:
            features["votes"] = tf.cast(parsed["ferplus/votes"], tf.float32)
        return features, tf.cast(parsed["label"], tf.int32)

    return parse


def feature_parse_fn(manifest):
    """Bottleneck-cache records: a pooled feature vector per face instead of an image."""
    spec = {"features": tf.io.FixedLenFeature([manifest["feature_dim"]], tf.float32),
            "label": tf.io.FixedLenFeature([], tf.int64),
            "source/row": tf.io.FixedLenFeature([], tf.int64)}

    def parse(serialized):
        parsed = tf.io.parse_single_example(serialized, spec)
        return ({"features": parsed["features"], "source_row": parsed["source/row"]},
                tf.cast(parsed["label"], tf.int32))

    return parse


def decode_fn(height, width, channels):
    def decode(features, label):
        features = dict(features)
        features["image"] = preprocess.decode_image(features.pop("encoded"), height, width, channels)
        return features, label

    return decode


def balanced(ds, counts, seed=None):
    """Rejection-resample the stream to a uniform class distribution (training only);
    `counts` are the training split's examples per class."""
    initial = [c / sum(counts) for c in counts]
    target = [1.0 / len(counts) if c else 0.0 for c in counts]
    target = [t / sum(target) for t in target]
    return ds.rejection_resample(lambda f, label: label, target_dist=target,
                                 initial_dist=initial, seed=seed).map(lambda label, pair: pair)


def make_dataset(files, manifest, *, training, batch_size, height, width, channels,
                 augment=True, shuffle_buffer=10000, input_context=None, seed=None,
                 skip_corrupt=False, balanced_sampling=False, train_split="train",
                 crop_size=0, random_erasing=0.0):
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
    cached = manifest.get("kind") == "features"
    ds = ds.map(feature_parse_fn(manifest) if cached else parse_fn(manifest),
                num_parallel_calls=tf.data.AUTOTUNE)
    if training and balanced_sampling:
        ds = balanced(ds, records.split_per_class(manifest, train_split), seed)
    if not cached:
        ds = ds.map(decode_fn(height, width, channels), num_parallel_calls=tf.data.AUTOTUNE)
    if skip_corrupt:
        ds = ds.ignore_errors()   # records whose bytes pass the CRC but do not parse or decode
    if training and augment and not cached:
        ds = ds.map(lambda f, l: ({**f, "image": preprocess.augment(
                        f["image"], crop_size=crop_size, erasing=random_erasing)}, l),
                    num_parallel_calls=tf.data.AUTOTUNE)
    if input_context:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    ds = ds.batch(batch_size, drop_remainder=training)
    return ds.prefetch(tf.data.AUTOTUNE)


def input_fn(mode, params, input_context=None):
    """Estimator input_fn. params: data_dir, batch_size, image_size (h, w, c); optional: split
    (overrides the mode's split), splits (a {"train": ..., "eval": ...} map, e.g. the folds of a
    cross-validation round), augment, shuffle_buffer, seed, skip_corrupt, balanced_sampling."""
    manifest = records.read_manifest(params["data_dir"])
    splits = {**MODE_TO_SPLIT_NAMES, **(params.get("splits") or {})}
    split = params.get("split") or splits[MODE_TO_SPLIT.get(mode, "test")]
    files = records.split_files(params["data_dir"], manifest, split)
    height, width, channels = params["image_size"]
    return make_dataset(files, manifest, training=mode == tf.estimator.ModeKeys.TRAIN,
                        batch_size=params["batch_size"], height=height, width=width,
                        channels=channels, augment=params.get("augment", True),
                        shuffle_buffer=params.get("shuffle_buffer", 10000),
                        input_context=input_context, seed=params.get("seed"),
                        skip_corrupt=params.get("skip_corrupt", False),
                        balanced_sampling=params.get("balanced_sampling", False),
                        train_split=splits["train"], crop_size=params.get("crop_size", 0),
                        random_erasing=params.get("random_erasing", 0.0))
