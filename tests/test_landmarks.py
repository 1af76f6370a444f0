"""Landmarks: .pts parsing (1-based), the mirror permutation, crop/point round trips, augmentation
that moves points with pixels, the CNN fitting a few faces, and the export's crop matching the
records' crop."""
import io
import tarfile

import cv2
import numpy as np
import pytest
import tensorflow as tf

from conftest import sample_rows
from fer_tf import faces, models
from fer_tf.data import convert
from fer_tf.faces import crops as landmark_crops
from fer_tf.data import preprocess
from fer_tf.training import run
from fer_tf.serving import exported
from fer_tf.training import receivers
from fer_tf.data import ibug300w
from fer_tf.core.errors import FerTfError


def test_pts_parsing_is_one_based(tmp_path):
    text = "version: 1\nn_points:  68\n{\n" + "1 1\n" + "10.5 20.25\n" * 67 + "}\n"
    points = ibug300w.parse_pts(text)
    assert points.shape == (68, 2) and tuple(points[0]) == (0.0, 0.0) and tuple(points[1]) == (9.5, 19.25)
    ibug300w.write_pts(points, tmp_path / "a.pts")
    assert np.allclose(ibug300w.parse_pts((tmp_path / "a.pts").read_text()), points)
    with pytest.raises(FerTfError, match="67 points"):
        ibug300w.parse_pts("n_points: 68\n{\n" + "1 1\n" * 67 + "}\n", "x.pts")


def test_mirror_maps_left_eye_to_right_eye():
    mirror = ibug300w.MIRROR
    assert sorted(mirror) == list(range(68)) and (mirror[mirror] == np.arange(68)).all()
    assert set(mirror[36:42]) == set(range(42, 48)) and mirror[36] == 45 and mirror[39] == 42
    assert mirror[0] == 16 and mirror[8] == 8 and mirror[48] == 54 and mirror[30] == 30


def test_crop_round_trip_and_pixels():
    box = (40.0, 60.0, 140.0, 170.0)
    window = landmark_crops.crop_window(box)
    points = np.array([[50.0, 70.0], [120.0, 150.0], [90.0, 100.0]])
    crop_points = landmark_crops.to_crop_coords(points, window)
    assert np.allclose(landmark_crops.to_image_coords(crop_points, window), points)
    image = np.zeros((300, 300, 3), np.uint8)
    x, y = points[2].astype(int)
    image[y, x] = 255
    crop = cv2.warpAffine(image, landmark_crops.crop_matrix(window), (128, 128), flags=cv2.INTER_LINEAR)
    v, u = np.unravel_index(crop[..., 0].argmax(), (128, 128))
    assert abs(u - crop_points[2, 0] * 128) <= 1 and abs(v - crop_points[2, 1] * 128) <= 1


# Each geometric augmentation alone (at more than its training range), then all together; the
# random flip happens in about half of the trials of each.
@pytest.mark.parametrize("augmentation", [
    {"max_rotation": 30.0, "scale_range": (1.0, 1.0), "max_shift": 0.0},
    {"max_rotation": 0.0, "scale_range": (0.8, 1.2), "max_shift": 0.0},
    {"max_rotation": 0.0, "scale_range": (1.0, 1.0), "max_shift": 0.1},
    {}])
def test_augmentation_moves_points_with_pixels(augmentation):
    tf.random.set_seed(3)
    rng = np.random.RandomState(0)
    points = rng.uniform(0.25, 0.75, (68, 2)).astype(np.float32)
    for trial in range(6):
        k = trial * 11 % 68
        image = np.zeros((128, 128, 3), np.float32)
        u, v = (points[k] * 128).round().astype(int)
        image[v - 1:v + 2, u - 1:u + 2] = 255.0
        out, moved = preprocess.augment_with_points(tf.constant(image), tf.constant(points),
                                                    **augmentation)
        # Find where the bright square went, and which landmark now carries point k.
        target = moved.numpy()
        after = np.argwhere(out.numpy()[..., 0] > 0.6 * out.numpy()[..., 0].max()).mean(axis=0)
        carriers = [i for i in range(68) if ibug300w.MIRROR[i] == k] + [k]
        assert min(np.hypot(after[1] - target[i, 0] * 128, after[0] - target[i, 1] * 128)
                   for i in carriers) < 2.0


# Batch norm on a batch of six converges more slowly and less repeatably: more steps, and its loss
# must fall 20x rather than 100x (measured between 1e-4 and 1e-16 of a 0.011 start).
@pytest.mark.parametrize("batch_norm, steps, factor", [(True, 1000, 20), (False, 400, 100)])
def test_landmark_cnn_fits_a_few_faces(batch_norm, steps, factor):
    spec = models.get("landmarks")
    params = {**spec.default_hparams(), "width": 0.25, "dense_units": 64, "batch_norm": batch_norm}
    rng = np.random.RandomState(0)
    # One face shape (outer eye corners 0.4 apart) at six different places: the positions must
    # be learnt, not only the shape (the seed's lesson). Each point is drawn as a bright dot on
    # noise, so where the face is can be seen, as in a photo.
    shape = rng.uniform(0.35, 0.65, (68, 2))
    shape[36], shape[45] = (0.3, 0.4), (0.7, 0.4)
    truth = (shape + rng.uniform(-0.12, 0.12, (6, 1, 2))).astype(np.float32)
    images = rng.uniform(0, 100, (6, 128, 128, 3)).astype(np.float32)
    for image, points in zip(images, truth):
        for x, y in points * 128:
            cv2.circle(image, (int(round(x)), int(round(y))), 2, (255, 255, 255), -1)
    with tf.Graph().as_default():
        tf.compat.v1.set_random_seed(0)
        out = tf.reshape(spec.build(spec.normalize(tf.constant(images)), 136, True, params), [-1, 68, 2])
        loss = tf.compat.v1.losses.mean_squared_error(truth, out)
        step = tf.compat.v1.train.get_or_create_global_step()
        lr = tf.compat.v1.train.cosine_decay(1e-3, step, steps)
        train = tf.compat.v1.train.AdamOptimizer(lr).minimize(loss, global_step=step)
        one_thread = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=1,
                                              inter_op_parallelism_threads=1)
        with tf.compat.v1.Session(config=one_thread) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            start = sess.run(loss)
            for _ in range(steps):
                sess.run(train)
            predicted = sess.run(out)
    assert sess_loss_dropped(start, predicted, truth, factor)


def sess_loss_dropped(start, predicted, truth, factor=100):
    final = float(np.mean((predicted - truth) ** 2))
    nme = ibug300w.nme(predicted, truth)
    # Where each face is (its mean point, shifted by up to 0.12) is learnt; the shape is on its way.
    placed = np.abs(predicted.mean(axis=1) - truth.mean(axis=1)).max() < 0.05
    return final < start / factor and nme.mean() < 0.1 and placed


def synthetic_archive(path, n=8):
    """Photos with an upscaled FER2013 face; dlib's own 68 points as the annotation."""
    pipeline = faces.FacePipeline()
    rows = [r for r in sample_rows() if r[2] == "Training"]
    written = 0
    with tarfile.open(path, "w:gz") as tar:
        for i, row in enumerate(rows):
            face = cv2.resize(np.array(row[1].split(), np.uint8).reshape(48, 48), (160, 160),
                              interpolation=cv2.INTER_CUBIC)
            canvas = np.full((240, 220, 3), 110, np.uint8)
            canvas[40:200, 30:190] = face[:, :, None]
            found = pipeline.faces(canvas)
            if not found:
                continue
            subset = "helen_testset" if written % 4 == 3 else ("afw" if written % 2 else "helen_trainset")
            for name, data in ((f"lm300w_crops/{subset}/f{i}.jpg", cv2.imencode(".jpg", canvas[:, :, ::-1])[1].tobytes()),
                               (f"lm300w_crops/{subset}/f{i}.pts", pts_text(found[0].landmarks))):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            written += 1
            if written == n:
                break


def pts_text(points):
    return ("version: 1\nn_points:  68\n{\n" + "".join(f"{x + 1:.3f} {y + 1:.3f}\n" for x, y in points)
            + "}\n").encode()


def test_records_train_and_export_serve_points_in_photo_pixels(lenet_export, tmp_path):
    archive = str(tmp_path / "lm.tar.gz")
    synthetic_archive(archive)
    out = str(tmp_path / "records")
    manifest = convert.convert_landmarks(archive, out, val_fraction=0.25, seed=1, progress=False,
                                         log=lambda *_: None)
    assert manifest.splits["test"].count == 2 and manifest.extra["boxes"]["detector"] >= 6
    metrics, export = run.train("landmarks", out, str(tmp_path / "run"), max_steps=3,
                                overrides={"batch_size": 2, "width": 0.25, "dense_units": 32},
                                log=lambda *_: None)
    assert {"nme", "failure_rate_8", "failure_rate_10"} <= set(metrics)
    # The SavedModel crops the photo around the given box exactly as the records did.
    sample = next(ibug300w.read_samples(archive, ("helen_testset",)))
    rgb = faces.load_image(sample.data)
    box, _ = convert.face_box(faces.FacePipeline(), rgb, sample.points)
    window = landmark_crops.crop_window(box)
    expected = cv2.warpAffine(rgb, landmark_crops.crop_matrix(window), (128, 128), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0).astype(np.float32)
    with tf.Graph().as_default():
        receiver = receivers.landmark_serving_input_receiver_fn(128)()
        with tf.compat.v1.Session() as sess:
            crop, got_window = sess.run(
                [receiver.features["image"], receiver.features["window"]],
                {receiver.receiver_tensors["image_bytes"]: [sample.data],
                 receiver.receiver_tensors["box"]: [box]})
    assert np.allclose(got_window[0], window, atol=1e-3)
    assert np.abs(crop[0] - expected).mean() < 2.0
    loaded = tf.saved_model.load(export)
    out = loaded.signatures["serving_default"](image_bytes=tf.constant([sample.data]),
                                               box=tf.constant([box], tf.float32))
    points, normalised = out["points"].numpy()[0], out["points_normalized"].numpy()[0]
    assert np.allclose(points, landmark_crops.to_image_coords(normalised, window), atol=1e-2)
    whole = loaded.signatures["image_only:serving_default"](image_bytes=tf.constant([sample.data]))
    assert whole["points"].shape == (1, 68, 2)
    assert exported.read_meta(export).labels.name == "landmarks68"
    # `fer-tf export` rebuilds it (float16 or int8 storage) with a `crops` signature as well: all
    # faces of a decoded photo in one call, cut as the records were, the same points as bytes.
    from fer_tf.serving import export as exporting
    for storage in ("float16", "int8"):
        rebuilt_dir = exporting.export(export, str(tmp_path / f"lm_{storage}"), **{storage: True})
        rebuilt = exported.LandmarkModel(rebuilt_dir)
        via_crops = rebuilt.points_in(rgb, [box, box])
        assert via_crops.shape == (2, 68, 2) and np.array_equal(via_crops[0], via_crops[1])
        side = window[2]
        assert np.abs(via_crops[0] - rebuilt.points(sample.data, box)).max() < 0.01 * side
        assert np.abs(via_crops[0] - points).max() < 0.01 * side     # storage error
        assert "image_only:serving_default" in rebuilt._signatures
    with pytest.raises(FerTfError, match="--tta"):
        exporting.export(export, str(tmp_path / "lm_tta"), tta="flip")
    # A landmark run can start from another's weights (distillation fine-tunes do), every tensor.
    said = []
    run.train("landmarks", str(tmp_path / "records"), str(tmp_path / "run2"), max_steps=1,
              init_from=rebuilt_dir,
              overrides={"batch_size": 2, "width": 0.25, "dense_units": 32}, log=said.append)
    restored = [line for line in said if "restored" in line]
    assert restored and "new:" not in restored[0], said
    # Evaluation against dlib on the same faces and boxes (the annotations here are dlib's own
    # points from the detector's box, so dlib must score ~0), CED PNG, and annotation.
    from fer_tf.apps import landmark_eval
    report = landmark_eval.evaluate(export, archive, png=str(tmp_path / "ced.png"))
    ours, dlib_row = report["rows"][export], report["rows"]["dlib"]
    assert report["faces"] == 2 and dlib_row["nme"] < 0.01 and list(report["rows"])[-1] == "dlib"
    assert ours["nme"] > dlib_row["nme"] and ours["latency_ms"] > 0
    assert (tmp_path / "ced.png").read_bytes()[:4] == b"\x89PNG"
    assert "fail@8%" in landmark_eval.format_report(report)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(sample.data)
    (tmp_path / "bad.jpg").write_bytes(b"nope")
    results = landmark_eval.annotate(export, [str(photo), str(tmp_path / "bad.jpg")], str(tmp_path / "ann"))
    assert len(results[0][1]) == 1 and results[0][1][0].shape == (68, 2)
    assert isinstance(results[1][1], str) and (tmp_path / "ann" / "photo.png").exists()
    # The face pipeline can align with the CNN's points instead of dlib's.
    from fer_tf.apps import predict
    summary = predict.run([str(photo)], lenet_export, "jsonl", str(tmp_path / "p.jsonl"),
                          with_landmarks=True, landmarks="cnn", landmarks_model=export,
                          detector="dlib")        # annotate's box
    assert (summary.images, summary.faces, summary.failed) == (1, 1, 0)
    import json
    row = json.loads((tmp_path / "p.jsonl").read_text())
    # Both place the points through the export's `crops` signature on the same decoded photo
    # (the jsonl rounds to 0.1 px).
    assert np.abs(np.array(row["landmarks"]) - results[0][1][0]).max() <= 0.05 + 1e-4


def test_failure_rates_count_faces_above_8_and_10_percent():
    from fer_tf.apps.landmark_eval import summarize
    rows = summarize([0.02, 0.08, 0.0801, 0.10, 0.1001, 0.30])
    assert rows["failure_rate_8"] == pytest.approx(4 / 6)     # 0.0801, 0.10, 0.1001, 0.30
    assert rows["failure_rate_10"] == pytest.approx(2 / 6)    # 0.1001, 0.30
    assert rows["nme"] == pytest.approx(0.6802 / 6)
