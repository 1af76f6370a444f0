"""Classify face images with an exported model; one result per image, bad files reported.

Each input image is taken as a face crop (the face pipeline with detection and alignment plugs in
here). Output: a table, JSON lines or CSV, on stdout or written atomically to --output.
"""
import csv
import io
import json
import os
import sys

from fer_tf import atomic, serving
from fer_tf.errors import FerTfError

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp"}


def expand_paths(paths):
    """Files as given; folders walked recursively for image files, in sorted order."""
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                        yield os.path.join(root, name)
        else:
            yield path


def read_image_bytes(path):
    """The file's bytes if it decodes as an image, else a one-line reason."""
    import cv2
    import numpy as np

    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return None, f"cannot read ({e.strerror})"
    if not data:
        return None, "empty file"
    if cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) is None:
        return None, "not a readable image (corrupt, truncated or another format)"
    return data, None


def classify(model, paths, batch_size=64):
    """[(path, probabilities or None, error or None)] in input order, batched through the model."""
    results, batch = [], []

    def flush():
        if batch:
            probabilities = model.predict([data for _, data in batch])
            results.extend((path, p, None) for (path, _), p in zip(batch, probabilities))
            batch.clear()

    for path in expand_paths(paths):
        data, error = read_image_bytes(path)
        if error:
            flush()
            results.append((path, None, error))
            continue
        batch.append((path, data))
        if len(batch) == batch_size:
            flush()
    flush()
    return results


def render(results, classes, fmt):
    out = io.StringIO()
    if fmt == "jsonl":
        for path, probs, error in results:
            row = {"path": path, "error": error}
            if probs is not None:
                row.update(label=classes[int(probs.argmax())],
                           probabilities={c: round(float(p), 6) for c, p in zip(classes, probs)})
            out.write(json.dumps(row) + "\n")
    elif fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["path", "label", *classes, "error"])
        for path, probs, error in results:
            if probs is None:
                writer.writerow([path, "", *[""] * len(classes), error])
            else:
                writer.writerow([path, classes[int(probs.argmax())],
                                 *[f"{p:.6f}" for p in probs], ""])
    else:
        for path, probs, error in results:
            if probs is None:
                out.write(f"{path}: ERROR {error}\n")
                continue
            order = probs.argsort()[::-1]
            top = ", ".join(f"{classes[i]} {probs[i]:.2f}" for i in order[:3])
            out.write(f"{path}: {classes[order[0]]}  ({top})\n")
    return out.getvalue()


def main(args):
    model = serving.ExportedModel(args.model)
    results = classify(model, args.paths)
    if not results:
        raise FerTfError(f"{' '.join(args.paths)}: no image files found")
    text = render(results, model.label_set.classes, args.format)
    if args.output:
        with atomic.atomic_file(args.output) as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    failed = sum(1 for _, probs, _ in results if probs is None)
    if failed:
        print(f"fer-tf predict: {failed} of {len(results)} file(s) failed", file=sys.stderr)
        return 1
    return 0
