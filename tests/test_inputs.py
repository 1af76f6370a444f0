"""input_fn: shapes and dtypes, augmentation only in training, sharding by input_context."""
import numpy as np
import tensorflow as tf

from conftest import sample_rows
from fer_tf.data import preprocess
from fer_tf.training import inputs, run

TRAIN, EVAL = tf.estimator.ModeKeys.TRAIN, tf.estimator.ModeKeys.EVAL


def pipeline(mode, data_dir, input_context=None, **hparams):
    """The input_fn of a LeNet7 run on `data_dir` (batch 16 unless given)."""
    prepared = run.prepare("lenet7", data_dir, {"batch_size": 16, **hparams}, seed=1)
    return inputs.input_fn(mode, prepared.params, prepared.run, prepared.manifest, input_context)


def first_batch(ds):
    return next(iter(ds))


def test_shapes_and_dtypes(sample_records):
    features, labels = first_batch(pipeline(TRAIN, sample_records))
    assert features["image"].shape == (16, 48, 48, 1) and features["image"].dtype == tf.float32
    assert labels.shape == (16,) and labels.dtype == tf.int32
    assert 0.0 <= float(tf.reduce_min(features["image"])) and float(tf.reduce_max(features["image"])) <= 255.0


def test_eval_is_exact_and_training_is_augmented(sample_records):
    rows = sample_rows()
    source = lambda r: np.array(rows[r][1].split(), np.float32).reshape(48, 48, 1)
    eval_ds = pipeline(EVAL, sample_records)
    count = 0
    for features, labels in eval_ds:
        for image, row, label in zip(features["image"].numpy(), features["source_row"].numpy(), labels.numpy()):
            np.testing.assert_array_equal(image, source(row))
            assert label == int(rows[row][0])
            count += 1
    assert count == 49                       # the whole eval split, no remainder dropped
    features, _ = first_batch(pipeline(TRAIN, sample_records))
    changed = [not np.array_equal(img, source(r))
               for img, r in zip(features["image"].numpy(), features["source_row"].numpy())]
    assert sum(changed) >= 14                # augmentation touches (nearly) every training face
    features, _ = first_batch(pipeline(TRAIN, sample_records, augment=False))
    for img, r in zip(features["image"].numpy(), features["source_row"].numpy()):
        np.testing.assert_array_equal(img, source(r))


def test_input_context_shards_files(sample_records):
    seen = []
    for pipeline_id in range(2):
        ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline_id,
                                         num_replicas_in_sync=2)
        rows = set()
        ds = pipeline(EVAL, sample_records, ctx, batch_size=32)
        for features, _ in ds:
            assert features["image"].shape[0] <= 16   # per-replica batch of a global 32
            rows.update(features["source_row"].numpy().tolist())
        seen.append(rows)
    assert seen[0] and seen[1] and not seen[0] & seen[1]
    assert len(seen[0] | seen[1]) == 49


def test_augment_keeps_shape_and_range():
    image = tf.random.uniform([48, 48, 1], 0, 255)
    out = preprocess.augment(image)
    assert out.shape == (48, 48, 1)
    assert float(tf.reduce_min(out)) >= 0 and float(tf.reduce_max(out)) <= 255


def test_rotation_turns_about_centre():
    image = np.zeros([9, 9, 1], np.float32)
    image[4, 8] = 255.0                            # right of centre
    out = preprocess._rotate(tf.constant(image), tf.constant(np.pi / 2, tf.float32)).numpy()
    y, x = np.unravel_index(out[..., 0].argmax(), (9, 9))
    assert x == 4 and y in (0, 8)                  # now straight above or below the centre


def test_decode_any_size_and_colour():
    rgb = tf.io.encode_jpeg(tf.cast(tf.random.uniform([100, 80, 3], 0, 255), tf.uint8))
    out = preprocess.decode_image(rgb, 48, 48, 1)
    assert out.shape == (48, 48, 1)
    rgba = tf.io.encode_png(tf.cast(tf.random.uniform([30, 30, 4], 0, 255), tf.uint8))
    assert preprocess.decode_image(rgba, 224, 224, 3).shape == (224, 224, 3)


def test_balanced_sampling_evens_out_classes(ferplus_records):
    # The FER+ sample is skewed (69 neutral ... 4 contempt); resampling makes it uniform.
    ds = pipeline(TRAIN, ferplus_records, batch_size=64, balanced_sampling=True, augment=False)
    labels = np.concatenate([l.numpy() for _, l in ds.take(40)])
    share = np.bincount(labels, minlength=8) / len(labels)
    assert share.min() > 0.08 and share.max() < 0.17          # uniform would be 0.125 each


def test_crop_training_and_random_erasing(sample_records):
    features, _ = first_batch(pipeline(TRAIN, sample_records, crop_size=40, random_erasing=1.0))
    assert features["image"].shape == (16, 40, 40, 1)
    image = tf.fill([48, 48, 1], 100.0)
    erased = preprocess.random_erase(image, 1.0).numpy()
    changed = erased != 100.0
    rows, cols = np.nonzero(changed[..., 0])
    # One axis-aligned rectangle of noise, between 2 % and 25 % of the face.
    assert changed.sum() == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    assert 0.02 * 48 * 48 * 0.8 <= changed.sum() <= 0.25 * 48 * 48 * 1.2
    assert (preprocess.random_erase(image, 0.0).numpy() == 100.0).all()


def test_synthetic_input_fn_has_the_run_shape(sample_records):
    prepared = run.prepare("lenet7", sample_records, seed=1)
    features, labels = first_batch(inputs.synthetic_input_fn(prepared.run, 8)())
    assert features["image"].shape == (8, 48, 48, 1) and labels.shape == (8,)


def test_resampling_target_is_uniform_over_the_classes_present():
    assert inputs.resample_target([5, 5, 5, 5]) == [0.25, 0.25, 0.25, 0.25]
    assert inputs.resample_target([10, 0, 30]) == [0.5, 0.0, 0.5]      # none to resample from
    assert inputs.resample_target([0, 7]) == [0.0, 1.0]


def test_one_input_pipeline_reads_every_file(sample_records):
    ctx = tf.distribute.InputContext(num_input_pipelines=1, input_pipeline_id=0,
                                     num_replicas_in_sync=1)
    rows = [r for features, _ in pipeline(EVAL, sample_records, ctx, batch_size=32)
            for r in features["source_row"].numpy().tolist()]
    assert len(rows) == len(set(rows)) == 49


def test_synthetic_faces_cover_the_pixel_range(sample_records):
    prepared = run.prepare("lenet7", sample_records, {"batch_size": 64}, seed=1)
    features, labels = first_batch(inputs.synthetic_input_fn(prepared.run, 64)())
    pixels = features["image"].numpy()
    assert pixels.shape == (64, 48, 48, 1) and 0.0 <= pixels.min() < 0.5
    assert 254.5 < pixels.max() < 255.0
    assert set(labels.numpy().tolist()) == set(range(7))
