"""Webcam-sized video end to end: frames/s of `fer-tf predict VIDEO --annotate DIR`.

A 640x480 clip is made from a bundled GENKI-4K photo (tests/data/two_faces.jpg: its left face,
scaled to about 200 px and drifting across the frame, so every frame has one face that moves);
then the predict command's own code path (`fer_tf.apps.predict.run`: decode, detect, align, classify
with the expression and smile models, draw, encode the annotated MP4) runs over it for each
detector and worker count, and the frames/s are printed (each run includes loading its models,
well under a second; a first run warms the file caches).

    python bench/bench_video.py [--frames 300] [--model models/default]
Ends by printing frames/s per configuration.
"""
import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_clip(path, frames, size=(640, 480)):
    photo = cv2.imread(os.path.join(ROOT, "tests", "data", "two_faces.jpg"))
    face = cv2.resize(photo[:, :photo.shape[1] // 2], None, fx=1.6, fy=1.6,
                      interpolation=cv2.INTER_CUBIC)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 30.0, size)
    h, w = face.shape[:2]
    for i in range(frames):
        frame = np.full((size[1], size[0], 3), 90, np.uint8)
        x = int((size[0] - w) * (0.5 + 0.4 * np.sin(i / 25)))
        y = int((size[1] - h) * (0.5 + 0.3 * np.cos(i / 40)))
        frame[y:y + h, x:x + w] = face
        writer.write(frame)
    writer.release()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--model", default=None, help="default: the shipped models/default")
    args = parser.parse_args()
    from fer_tf.core import logs
    from fer_tf.apps import predict
    logs.setup()
    work = tempfile.mkdtemp(prefix="bench_video_")
    clip = os.path.join(work, "clip.mp4")
    make_clip(clip, args.frames)
    predict.run([os.path.join(ROOT, "tests", "data", "two_faces.jpg")], args.model,
                output=os.path.join(work, "warm.jsonl"), smile=True)        # caches warm
    results = {}
    for detector in ("dlib", "blazeface", "blazeface_auto"):
        for workers in (1, 2):
            out = os.path.join(work, f"{detector}_{workers}")
            start = time.perf_counter()
            summary = predict.run([clip], args.model, output=out + ".jsonl", annotate=out,
                                  detector=detector, workers=workers, smile=True)
            seconds = time.perf_counter() - start
            results[(detector, workers)] = summary.frames / seconds
            print(f"{detector:14s} {workers} worker(s): {summary.frames} frames, {summary.faces} "
                  f"faces, {seconds:.1f} s -> {summary.frames / seconds:.1f} frames/s "
                  "(640x480, expression + smile, annotated MP4 written)", flush=True)
    best = max(results, key=results.get)
    print(f"best: {best[0]} with {best[1]} worker(s), {results[best]:.1f} frames/s")


if __name__ == "__main__":
    main()
