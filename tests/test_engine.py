"""The Analyzer's batching engine with a stand-in model and face pipeline (no network runs):
results in input order, faces batched across pictures up to `batch_size`, a picture's error
kept to it, webcam-style flushing, the worker pool giving the single-threaded results, and
the picture readers' refusals."""
import os
import threading

import numpy as np
import pytest

from fer_tf import faces
from fer_tf.apps import analyzer as analyzer_module
from fer_tf.apps.analyzer import Analyzer, Result, to_rgb
from fer_tf.core.errors import FerTfError
from fer_tf.core.labels import FER7
from fer_tf.serving import exported


class StandInModel(exported.ExportedModel):
    """Answers from the pixels: class = a crop's mean grey level mod 7; records each call."""

    def __init__(self, smile=False, channels=1):
        self.path, self.label_set, self.image_size = "stand-in", FER7, (4, 4, channels)
        self.tta, self.precision, self.calls, self.smile = "none", "float32", [], smile
        self.shapes = []

    @property
    def has_smile(self):
        return self.smile

    def predict_faces_and_smiles(self, crops):
        self.calls.append(len(crops))
        self.shapes.append(crops.shape[1:])
        levels = np.round(crops.reshape(len(crops), -1).mean(axis=1)).astype(int)
        return np.eye(7)[levels % 7], (levels / 1000.0 if self.smile else None)


class StandInPipeline:
    """Picture k (its top-left pixel) has k % 3 faces; a picture whose pixel is 99 fails."""
    threads, upsampled, options = set(), [], []

    def __init__(self, **options):
        self.upsample = 0
        StandInPipeline.options.append(options)

    def faces(self, rgb):
        StandInPipeline.threads.add(threading.current_thread().name)
        StandInPipeline.upsampled.append(self.upsample)
        level = int(rgb[0, 0, 0])
        if level == 99:
            raise RuntimeError("detector exploded")
        return [faces.Face((j + 0.26, 0, j + 2, 2), np.full((68, 2), level + j, float), 0.51234 + j / 10,
                           eyes=np.array([[level + j, 0]])) for j in range(level % 3)]


ALIGNED = []


def stand_in_align(rgb, points, size, channels):
    ALIGNED.append((size, channels))
    return np.full((size, size, channels), int(points[0][0]) % 256, np.uint8)


@pytest.fixture
def stand_ins(monkeypatch):
    monkeypatch.setattr(analyzer_module.faces, "FacePipeline", StandInPipeline)
    monkeypatch.setattr(analyzer_module.faces, "align", stand_in_align)
    StandInPipeline.threads, StandInPipeline.upsampled, StandInPipeline.options = set(), [], []
    ALIGNED.clear()
    return StandInModel()


def pictures(levels):
    return [np.full((6, 6, 3), level, np.uint8) for level in levels]


def expected_labels(levels):
    return [[FER7.classes[(level + j) % 7] for j in range(level % 3)] for level in levels]


@pytest.mark.parametrize("workers", [1, 2])
def test_faces_are_batched_across_pictures_and_results_come_back_in_order(stand_ins, workers):
    levels = [1, 2, 3, 4, 5, 7, 8, 10, 11, 13]        # 1+2+0+1+2 | 1+2+1+2 | 1 faces
    engine = Analyzer(model=stand_ins, smile=False, landmarks=None, batch_size=5, workers=workers)
    results = engine.analyze_many(pictures(levels))
    assert [[f.label for f in r.faces] for r in results] == expected_labels(levels)
    assert [r.source for r in results] == [f"<ndarray {i}>" for i in range(len(levels))]
    # A batch runs once a whole picture brings it to batch_size, then the rest at the end.
    assert stand_ins.calls == [6, 6, 1]
    assert [f.index for f in results[1].faces] == [0, 1]
    assert results[1].faces[1].box == (1.3, 0.0, 3.0, 2.0) and results[1].faces[1].score == 0.6123
    assert set(ALIGNED) == {(4, 1)}                    # the model's input side and channels
    if workers == 2:
        assert all(name.startswith("fer_tf_faces") for name in StandInPipeline.threads)
    else:                                              # one worker: the calling thread
        assert StandInPipeline.threads == {threading.current_thread().name}


@pytest.mark.parametrize("workers", [1, 2])
def test_a_bad_picture_is_its_own_error_and_the_rest_carry_on(stand_ins, workers):
    engine = Analyzer(model=stand_ins, smile=False, landmarks=None, workers=workers)
    images = pictures([2]) + [np.zeros((3, 3), np.float32), b"not an image"] + pictures([4])
    results = engine.analyze_many(images)
    assert [len(r.faces) for r in results] == [2, 0, 0, 1]
    assert results[1].error == "numpy image of dtype float32; give uint8 pixels 0-255"
    assert results[2].error and results[2].source == "<bytes 2>"
    assert results[0].error is None and results[3].error is None


def test_a_failing_face_pipeline_fails_only_that_picture_with_workers(stand_ins):
    engine = Analyzer(model=stand_ins, smile=False, landmarks=None, workers=2)
    results = engine.analyze_many(pictures([2, 99, 4]))
    assert [len(r.faces) for r in results] == [2, 0, 1]
    assert results[1].error == "face pipeline failed: RuntimeError: detector exploded"


def test_flushing_classifies_each_picture_before_the_next_is_read(stand_ins):
    engine = Analyzer(model=stand_ins, smile=False, landmarks=None, batch_size=64)
    read = []

    def source():
        for level in [1, 2, 4]:
            read.append(level)
            yield Result(f"frame {level}"), pictures([level])[0]

    for result in engine.stream(source(), flush_each=True):
        assert read[-1] == int(result.source.split()[1])       # nothing read ahead
    assert stand_ins.calls == [1, 2, 1]
    batched = Analyzer(model=stand_ins, smile=False, landmarks=None, batch_size=64)
    stand_ins.calls.clear()
    assert len(list(batched.stream(iter([(Result("a"), pictures([1])[0]), (Result("b"), pictures([2])[0])])))) == 2
    assert stand_ins.calls == [3]


def test_without_detection_the_whole_picture_is_the_face(stand_ins):
    engine = Analyzer(model=stand_ins, smile=False, landmarks=None, detect=False)
    result = engine.analyze(np.full((10, 20, 3), 3, np.uint8))
    assert len(result.faces) == 1 and result.faces[0].box == (0.0, 0.0, 20.0, 10.0)
    assert result.faces[0].score is None and result.faces[0].label == FER7.classes[3]


def test_a_new_stream_drops_what_an_abandoned_one_left(stand_ins):
    engine = Analyzer(model=stand_ins, smile=False, landmarks=None, batch_size=64)
    list(engine.add(Result("left behind"), pictures([1])[0]))
    assert [r.source for r in engine.analyze_many(pictures([4]))] == ["<ndarray 0>"]


@pytest.mark.parametrize("options, message", [
    ({"landmarks": "sift"}, "landmarks='sift': use 'dlib', 'cnn' or None"),
    ({"detector": "haar"}, "detector='haar': use blazeface_auto, blazeface, dlib"),
    ({"align_points": 7}, "align_points=7: use 68 or 5"),
])
def test_bad_options_are_refused_in_one_line(stand_ins, options, message):
    with pytest.raises(FerTfError) as raised:
        Analyzer(model=stand_ins, smile=False, **options)
    assert str(raised.value) == message


def test_pictures_in_every_form():
    grey = np.arange(6, dtype=np.uint8).reshape(2, 3)
    assert to_rgb(grey).shape == (2, 3, 3) and (to_rgb(grey)[..., 2] == grey).all()
    assert (to_rgb(grey[:, :, None]) == to_rgb(grey)).all()
    bgr = np.zeros((2, 2, 3), np.uint8)
    bgr[..., 0] = 200                                     # blue in OpenCV's order
    assert to_rgb(bgr, bgr=True)[0, 0].tolist() == [0, 0, 200]
    assert to_rgb(bgr)[0, 0].tolist() == [200, 0, 0]
    rgba = np.zeros((2, 2, 4), np.uint8)
    assert to_rgb(rgba).shape == (2, 2, 3)
    for bad, text in [(np.zeros((2, 2, 2), np.uint8), "numpy image of shape (2, 2, 2); give HxW, HxWx3 or HxWx4"),
                      (np.zeros((0, 2, 3), np.uint8), "numpy image of shape (0, 2, 3)"),
                      (42, "cannot read a int as an image; give a path, bytes, a numpy array or a PIL image")]:
        with pytest.raises(faces.BadImage) as raised:
            to_rgb(bad)
        assert str(raised.value).startswith(text)


def test_results_are_given_only_once_every_face_before_them_is_classified(stand_ins):
    engine = Analyzer(model=stand_ins, smile=False, landmarks=None, batch_size=3)
    given = []
    for result in engine.stream((Result(str(k)), picture) for k, picture in
                                enumerate(pictures([2, 3, 3, 1, 2, 3]))):
        given.append(result.source)
        assert all(face.probabilities is not None for face in result.faces)
    assert given == ["0", "1", "2", "3", "4", "5"]


def test_the_pool_reads_a_few_pictures_per_worker_ahead(stand_ins):
    engine = Analyzer(model=stand_ins, smile=False, landmarks=None, workers=2, batch_size=1)
    read = []

    def source():
        for k in range(20):
            read.append(k)
            yield Result(str(k)), pictures([1])[0]

    stream = engine.stream(source())
    next(stream)
    assert len(read) == 9                              # 4 per worker in flight, then one more


def test_small_pictures_are_upsampled_unless_told(stand_ins, monkeypatch):
    Analyzer(model=stand_ins, smile=False, landmarks=None).analyze_many(
        pictures([1]) + [np.full((300, 20, 3), 1, np.uint8), np.full((20, 300, 3), 1, np.uint8),
                         np.full((255, 255, 3), 1, np.uint8)])
    assert StandInPipeline.upsampled == [1, 0, 0, 1]   # below 256 px on the longer side
    StandInPipeline.upsampled.clear()
    Analyzer(model=stand_ins, smile=False, landmarks=None, upsample=2).analyze(pictures([1])[0])
    assert StandInPipeline.upsampled == [2]
    assert StandInPipeline.options[0]["landmarks"] is False and StandInPipeline.options[0]["points_model"] is None


def test_a_colour_model_gets_colour_crops_without_detection(stand_ins):
    colour = StandInModel(channels=3)
    picture = np.zeros((8, 8, 3), np.uint8)
    picture[..., 1] = 90
    Analyzer(model=colour, smile=False, landmarks=None, detect=False).analyze(picture)
    assert colour.shapes == [(4, 4, 3)]
    Analyzer(model=stand_ins, smile=False, landmarks=None, detect=False).analyze(picture)
    assert stand_ins.shapes == [(4, 4, 1)]


def test_the_expression_models_own_smile_head_answers_in_the_same_call(stand_ins):
    both = StandInModel(smile=True)
    engine = Analyzer(model=both, landmarks=None)
    assert engine.smile_model is None and engine.smile_from_model
    result = engine.analyze(pictures([5])[0])
    assert [face.smile for face in result.faces] == [0.005, 0.006] and both.calls == [2]
    assert [type(h).__name__ for h in engine.heads] == ["ExpressionHead", "SmileHead"]


def test_landmarks_and_extra_heads_see_every_face(stand_ins):
    from fer_tf.apps import heads

    class Counting(heads.FaceHead):
        attribute = "counted"

        def __init__(self):
            self.detected_boxes, self.batches = [], []

        def detected(self, face, found):
            self.detected_boxes.append(found.box)

        def predict(self, faces, crops):
            self.batches.append(len(faces))

    extra = Counting()
    engine = Analyzer(model=stand_ins, smile=False, landmarks="dlib", extra_heads=[extra])
    result = engine.analyze(pictures([2])[0])
    assert [type(h).__name__ for h in engine.heads] == ["ExpressionHead", "LandmarksHead", "Counting"]
    assert result.faces[1].landmarks[0].tolist() == [3.0, 3.0]
    assert extra.detected_boxes == [(0.26, 0, 2, 2), (1.26, 0, 3, 2)] and extra.batches == [2]
    assert StandInPipeline.options[0]["landmarks"] is True
    plain = Analyzer(model=stand_ins, smile=False, landmarks=None)
    assert plain.analyze(pictures([2])[0]).faces[0].landmarks is None


def test_a_webcam_is_classified_frame_by_frame_and_a_file_in_batches(stand_ins, monkeypatch, tmp_path):
    frames = [(k, pictures([1])[0], None) for k in range(3)]
    monkeypatch.setattr(analyzer_module, "read_frames", lambda source, stride, most: iter(frames))
    engine = Analyzer(model=stand_ins, smile=False, landmarks=None)
    assert [r.frame for r in engine.analyze_video("7")] == [0, 1, 2]       # no such file: a webcam
    assert stand_ins.calls == [1, 1, 1]
    stand_ins.calls.clear()
    clip = tmp_path / "7"
    clip.write_bytes(b"")
    assert len(list(engine.analyze_video(str(clip)))) == 3
    assert stand_ins.calls == [3]


def test_video_frames_by_stride_and_count(tmp_path):
    import cv2
    path = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 10, (16, 16))
    for k in range(7):
        writer.write(np.full((16, 16, 3), 30 * k, np.uint8))
    writer.release()
    frames = list(analyzer_module.read_frames(path))
    assert [index for index, _, _ in frames] == list(range(7))
    assert abs(int(frames[2][1][0, 0, 0]) - 60) <= 3 and frames[2][1].shape == (16, 16, 3)
    assert [i for i, _, _ in analyzer_module.read_frames(path, stride=3)] == [0, 3, 6]
    assert [i for i, _, _ in analyzer_module.read_frames(path, stride=2, max_frames=2)] == [0, 2]
    assert [i for i, _, _ in analyzer_module.read_frames(path, max_frames=7)] == list(range(7))
    assert list(analyzer_module.read_frames(str(tmp_path / "none.avi"))) == [
        (None, None, "cannot open video (unreadable or unsupported codec)")]


def test_documented_defaults():
    import inspect
    defaults = {k: v.default for k, v in inspect.signature(Analyzer).parameters.items()}
    assert defaults["optimize"] is True and defaults["smile"] is True and defaults["workers"] == 1
    assert defaults["batch_size"] == 64 and defaults["landmarks"] == "dlib"


def test_objects_that_only_look_like_pictures_are_refused():
    class ModeOnly:
        mode = "RGB"

    with pytest.raises(faces.BadImage, match="cannot read a ModeOnly as an image"):
        to_rgb(ModeOnly())
    with pytest.raises(faces.BadImage, match=r"numpy image of shape \(2, 2, 0\)"):
        to_rgb(np.zeros((2, 2, 0), np.uint8))


def test_pictures_are_rgb_unless_told_bgr_and_kept_only_when_asked(stand_ins):
    red = np.zeros((6, 6, 3), np.uint8)
    red[..., 0] = 2                                      # two faces when read as RGB
    engine = Analyzer(model=stand_ins, smile=False, landmarks=None)
    assert len(engine.analyze(red).faces) == 2 and len(engine.analyze_many([red])[0].faces) == 2
    assert len(engine.analyze(red, bgr=True).faces) == 0
    assert engine.analyze(red).image is None
    kept = list(engine.stream(iter([(Result("a"), red)]), keep_images=True))
    assert kept[0].image is red
    frame = engine.analyze_many([red, red]).to_pandas()
    assert str(frame["face"].dtype) == "Int64" and str(frame["frame"].dtype) == "Int64"


def test_an_expression_model_without_a_smile_head_gets_the_shipped_smile_model(stand_ins):
    engine = Analyzer(model=stand_ins, landmarks=None)
    assert not engine.smile_from_model and os.path.basename(engine.smile_model.path) == "smile"


def test_a_missing_webcam_and_a_one_frame_video(tmp_path):
    import cv2
    assert list(analyzer_module.read_frames("7")) == [(None, None, "cannot open webcam 7")]
    path = str(tmp_path / "one.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 10, (16, 16))
    writer.write(np.full((16, 16, 3), 1, np.uint8))
    writer.release()
    assert [index for index, _, _ in analyzer_module.read_frames(path)] == [0]


def test_analyze_video_takes_every_frame_by_default(stand_ins, tmp_path):
    import cv2
    path = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 10, (16, 16))
    for _ in range(3):
        writer.write(np.full((16, 16, 3), 1, np.uint8))
    writer.release()
    engine = Analyzer(model=stand_ins, smile=False, landmarks=None)
    assert [r.frame for r in engine.analyze_video(path)] == [0, 1, 2]


def test_add_keeps_no_image_unless_asked_and_the_default_model_is_the_shipped_one(stand_ins):
    engine = Analyzer(model=stand_ins, smile=False, landmarks=None)
    result = Result("a")
    engine.add(result, pictures([1])[0])
    assert result.image is None
    default = Analyzer(smile=False, landmarks=None)
    assert os.path.basename(default.model.path) == "default"


@pytest.mark.parametrize("bad, text", [
    (np.zeros((2, 2, 1, 3), np.uint8), "numpy image of shape (2, 2, 1, 3)"),
    (np.zeros((2, 0, 3), np.uint8), "numpy image of shape (2, 0, 3)"),
    (np.zeros((2, 2, 3), np.int8), "numpy image of dtype int8; give uint8 pixels 0-255"),
])
def test_arrays_that_are_not_pictures(bad, text):
    with pytest.raises(faces.BadImage) as raised:
        to_rgb(bad)
    assert str(raised.value).startswith(text)
