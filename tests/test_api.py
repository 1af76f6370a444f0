"""The Python API (`fer_tf.Analyzer`): every image form gives the same faces, typed results and a
DataFrame, bad items reported per item, videos frame by frame, the shipped smile model, and the
CLI's predict running through the same engine."""
import io
import json
import os

import cv2
import numpy as np
import pytest
from PIL import Image

import fer_tf
from conftest import FACE_PNG, TWO_FACES
from fer_tf.apps import analyzer, heads, predict
from fer_tf.core import labels
from test_predict import face_clip, face_scene as scene   # two faces (one mirrored), 500x300


@pytest.fixture(scope="module")
def lenet_analyzer(lenet_export):
    return fer_tf.Analyzer(lenet_export, smile=False)


def summary(result):
    return [(f.box, f.label, np.round(f.probabilities, 5).tolist()) for f in result.faces]


def test_every_image_form_gives_the_same_faces(lenet_analyzer, tmp_path):
    grey = scene()
    path = tmp_path / "scene.png"
    cv2.imwrite(str(path), grey)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    forms = [str(path), path, path.read_bytes(), grey, rgb, Image.open(path),
             Image.fromarray(rgb)]
    results = [lenet_analyzer.analyze(form) for form in forms]
    assert len(results[0].faces) == 2
    for result in results[1:]:
        assert summary(result) == summary(results[0])
    assert results[0].source == str(path) and results[2].source.startswith("<bytes")


def test_bgr_arrays_are_flipped_to_rgb(lenet_analyzer):
    """A colour photo as OpenCV reads it (BGR) must match the same photo given as RGB."""
    rgb = cv2.cvtColor(scene(), cv2.COLOR_GRAY2RGB)
    rgb[:, :, 0] = np.clip(rgb[:, :, 0].astype(int) + 60, 0, 255)      # a red cast
    as_rgb = lenet_analyzer.analyze(rgb)
    as_bgr = lenet_analyzer.analyze(np.ascontiguousarray(rgb[:, :, ::-1]), bgr=True)
    wrong = lenet_analyzer.analyze(np.ascontiguousarray(rgb[:, :, ::-1]))
    assert summary(as_bgr) == summary(as_rgb)
    assert summary(wrong) != summary(as_rgb)


def test_results_are_typed_with_dict_and_dataframe(lenet_analyzer):
    result = lenet_analyzer.analyze(scene())
    face = result.faces[0]
    # FER2013's class order (Kaggle's emotion ids 0-6), written out.
    assert face.classes == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    assert list(face.emotions) == list(face.classes)
    assert abs(sum(face.emotions.values()) - 1) < 1e-4
    assert face.label == max(face.emotions, key=face.emotions.get)
    assert face.landmarks.shape == (68, 2) and 0 < face.score
    as_dict = result.to_dict()
    json.dumps(as_dict)                                   # plain types all the way down
    assert as_dict["faces"][1]["box"] == list(result.faces[1].box)
    frame = result.to_pandas()
    assert len(frame) == 2
    assert set(labels.FER7.classes) <= set(frame.columns)
    assert list(frame["face"]) == [0, 1] and list(frame["label"]) == [f.label for f in result.faces]


def test_bad_items_are_reported_and_the_rest_analysed(lenet_analyzer, tmp_path, monkeypatch):
    calls = []
    original = lenet_analyzer.model.predict_faces_and_smiles
    monkeypatch.setattr(lenet_analyzer.model, "predict_faces_and_smiles",
                        lambda faces: calls.append(len(faces)) or original(faces))
    blank = np.full((200, 200), 90, np.uint8)
    items = [scene(), str(tmp_path / "missing.jpg"), b"not an image", np.zeros((4, 4), np.float32),
             blank, object(), scene(5)]
    results = lenet_analyzer.analyze_many(items)
    assert [len(r.faces) for r in results] == [2, 0, 0, 0, 0, 0, 2]
    errors = [r.error for r in results]
    assert errors[0] is None and errors[4] is None and errors[6] is None
    assert "no such file" in errors[1] and "not a readable image" in errors[2]
    assert "uint8" in errors[3] and "object" in errors[5]
    assert calls == [4]                                  # four faces of two pictures, one batch
    frame = results.to_pandas()
    assert len(frame) == 9                               # 4 faces + 5 pictures without one
    assert frame["error"].notna().sum() == 4


def test_video_frames_come_back_in_order(lenet_analyzer, tmp_path):
    path = face_clip(tmp_path / "clip.avi", 6)
    frames = list(lenet_analyzer.analyze_video(path, stride=2))
    assert [r.frame for r in frames] == [0, 2, 4]
    assert all(len(r.faces) == 2 for r in frames)
    assert list(lenet_analyzer.analyze_video(str(tmp_path / "none.mp4")))[0].error


def test_no_detect_takes_pictures_as_faces(lenet_export):
    crops = fer_tf.Analyzer(lenet_export, smile=False, detect=False)
    face = cv2.imread(FACE_PNG, 0)
    result = crops.analyze(face)
    assert len(result.faces) == 1 and result.faces[0].box == (0, 0, 48, 48)


def exported_smile():
    from fer_tf.serving import exported
    return exported.shipped_model("smile")


def test_shipped_models_on_a_real_photo():
    """The default Analyzer — the shipped default, whose one network gives expression and smile —
    on two GENKI-4K photos side by side (tests/data/two_faces.jpg: a smiling face left, a neutral
    one right)."""
    default = fer_tf.Analyzer()
    assert default.smile_from_model and default.smile_model is None
    assert fer_tf.Analyzer(smile=exported_smile()).smile_model.label_set == labels.SMILE2
    left, right = sorted(default.analyze(TWO_FACES).faces, key=lambda f: f.box[0])
    assert (left.label, right.label) == ("happy", "neutral")
    assert left.smile > 0.9 and right.smile < 0.1
    assert default.analyze(np.full((300, 500), 128, np.uint8)).faces == []


def test_wrong_arguments_are_one_line_errors(lenet_export):
    from fer_tf.core.errors import FerTfError
    with pytest.raises(FerTfError, match="landmarks="):
        fer_tf.Analyzer(lenet_export, smile=False, landmarks="mediapipe")
    with pytest.raises(FerTfError, match="not a smile model"):
        fer_tf.Analyzer(lenet_export, smile=lenet_export)
    with pytest.raises(FerTfError, match="not a landmark model"):
        fer_tf.Analyzer(lenet_export, smile=False, landmarks="cnn", landmarks_model=lenet_export)


def test_pil_image_keeps_exif_orientation(lenet_analyzer):
    """A PIL image with an EXIF rotation goes through the same loader as a file."""
    grey = scene()
    image = Image.fromarray(np.rot90(grey))              # stored rotated ...
    exif = image.getexif()
    exif[0x0112] = 6                                     # ... and tagged "rotate 90 CW to view"
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif, quality=95)
    upright = analyzer.to_rgb(Image.open(io.BytesIO(buffer.getvalue())))
    assert upright.shape[:2] == grey.shape


def test_worker_pool_gives_the_single_threaded_results(lenet_export, tmp_path, monkeypatch):
    """Two detection threads: the same faces and probabilities in the same order; a picture whose
    face pipeline crashes in a worker is that picture's error and the rest go on."""
    items = [scene(i) for i in range(0, 30, 3)] + [b"junk", scene(1)]
    items[2] = np.vstack([items[2], np.full((10, 500), 128, np.uint8)])   # the one that crashes
    one = fer_tf.Analyzer(lenet_export, smile=False, workers=1).analyze_many(items)
    pooled = fer_tf.Analyzer(lenet_export, smile=False, workers=2, batch_size=4)
    two = pooled.analyze_many(items)
    assert [summary(r) for r in two] == [summary(r) for r in one]
    assert [r.error for r in two] == [r.error for r in one]
    original = analyzer.faces.FacePipeline.faces
    threads = set()

    def crash_on_the_third(self, rgb):
        import threading
        threads.add(threading.current_thread().name)
        if rgb.shape[0] == 310:
            raise RuntimeError("detector fell over")
        return original(self, rgb)

    monkeypatch.setattr(analyzer.faces.FacePipeline, "faces", crash_on_the_third)
    crashed = pooled.analyze_many(items)
    assert "RuntimeError: detector fell over" in crashed[2].error and not crashed[2].faces
    assert [summary(r) for i, r in enumerate(crashed) if i != 2] == \
        [summary(r) for i, r in enumerate(one) if i != 2]
    assert all(name.startswith("fer_tf_faces") for name in threads) and len(threads) == 2


def test_an_abandoned_video_does_not_leak_into_the_next_call(lenet_analyzer, tmp_path):
    path = face_clip(tmp_path / "clip.avi", 5)
    frames = lenet_analyzer.analyze_video(path)
    next(frames)                                     # the caller stops after one frame
    result = lenet_analyzer.analyze(np.full((200, 200), 90, np.uint8))
    assert result.source.startswith("<ndarray") and result.frame is None and not result.faces


def test_shipped_models_answer_to_their_names(tmp_path, monkeypatch):
    """`--model accurate` (or any shipped name) from any directory; a path wins over a name."""
    from fer_tf.serving import exported
    monkeypatch.chdir(tmp_path)
    assert exported.resolve_export("accurate").endswith(os.path.join("models", "ensemble_fer2013"))
    assert exported.resolve_export("vgg_fer2013_50").endswith(os.path.join("models", "vgg_fer2013_50"))
    (tmp_path / "accurate").mkdir()                 # a folder of that name here: it is used
    from fer_tf.core.errors import FerTfError
    with pytest.raises(FerTfError, match="neither a SavedModel"):
        exported.resolve_export("accurate")


class BrightnessHead(heads.FaceHead):
    """A per-face output written only here: the mean grey level of the aligned face."""
    attribute = "brightness"

    def predict(self, faces, crops):
        for face, crop in zip(faces, crops):
            face.brightness = float(next(iter(crop.values())).mean())

    def fields(self, face, rounded=False):
        return {"brightness": round(face.brightness, 1) if rounded else face.brightness}

    def csv_columns(self, classes):
        return ["brightness"]

    def csv_cells(self, row, classes):
        return [f"{row['brightness']:.1f}" if "brightness" in row else ""]

    def frame_values(self, face):
        return {"brightness": face.brightness}

    def inline(self, row):
        return f"  brightness {row['brightness']:.0f}"


def test_a_head_defined_outside_the_package_reaches_every_output(lenet_export, tmp_path):
    engine = fer_tf.Analyzer(lenet_export, smile=False, landmarks=None,
                             extra_heads=[BrightnessHead()])
    result = engine.analyze(scene())
    assert [0 < f.brightness < 255 for f in result.faces] == [True, True]
    assert result.faces[0].to_dict()["brightness"] == result.faces[0].brightness
    assert list(result.to_pandas().columns)[-2:] == ["brightness", "error"]
    for fmt, check in (("csv", lambda text: text.splitlines()[0].endswith(",sad,surprise,neutral,"
                                                                          "brightness,error")),
                       ("jsonl", lambda text: "brightness" in json.loads(text.splitlines()[0])),
                       ("table", lambda text: "  brightness " in text.splitlines()[1])):
        out = tmp_path / f"faces.{fmt}"
        writer = predict.Writer(fmt, engine.classes, str(out), engine.reported_heads)
        writer.write(result)
        writer.close()
        assert check(out.read_text()), fmt
