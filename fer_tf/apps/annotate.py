"""Annotated copies of the inputs: a box, the top label and a named probability bar per class for
every face ("no face found" where there is none); each copy keeps its input's path relative to
the inputs' common folder, so no two inputs share a target; videos become MP4s. Written
atomically: an interrupted video is closed and published with the frames drawn so far."""
import os

import cv2
import numpy as np

from fer_tf.core import atomic, outputs


def _bgr(hex_colour):
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return (b, g, r)


def draw(rgb, faces, label_set):
    """-> BGR image with boxes, labels and per-class probability bars."""
    image = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    scale = max(image.shape[:2]) / 640.0
    font, thick = 0.45 * max(scale, 0.6), max(1, int(round(scale * 1.5)))
    for face in faces:
        left, top, right, bottom = (int(round(v)) for v in face.box)
        k = int(face.probabilities.argmax())
        colour = _bgr(label_set.colours[k])
        cv2.rectangle(image, (left, top), (right, bottom), colour, thick)
        text = f"{label_set.classes[k]} {face.probabilities[k]:.2f}"
        if face.smile is not None:
            text += f"  smile {face.smile:.2f}"
        cv2.putText(image, text, (left, max(12, top - 4)), cv2.FONT_HERSHEY_SIMPLEX, font, colour,
                    thick, cv2.LINE_AA)
        bar_w = max(30, (right - left) // 2)
        row_h = max(9, int(11 * scale))
        small = 0.33 * max(scale, 1.0)
        for j, (name, p) in enumerate(zip(label_set.classes, face.probabilities)):
            y = bottom + 3 + j * (row_h + 1)
            if y + row_h >= image.shape[0]:
                break
            cv2.rectangle(image, (left, y), (left + bar_w, y + row_h), (60, 60, 60), -1)
            cv2.rectangle(image, (left, y), (left + int(bar_w * float(p)), y + row_h),
                          _bgr(label_set.colours[j]), -1)
            cv2.putText(image, f"{name} {float(p):.2f}", (left + bar_w + 3, y + row_h - 1),
                        cv2.FONT_HERSHEY_SIMPLEX, small, (255, 255, 255), 1, cv2.LINE_AA)
        if face.landmarks is not None:
            for x, y in np.round(face.landmarks).astype(int):
                cv2.circle(image, (x, y), max(1, thick - 1), (0, 255, 0), -1)
    if not faces:
        cv2.putText(image, "no face found", (5, max(14, int(18 * scale))), cv2.FONT_HERSHEY_SIMPLEX,
                    font, (0, 0, 255), thick, cv2.LINE_AA)
    return image


def common_base(paths):
    """The deepest folder holding every input file (webcam indices aside)."""
    folders = [os.path.dirname(os.path.abspath(p)) for p in paths if not p.isdigit()]
    return os.path.commonpath(folders) if folders else os.getcwd()


class Annotator:
    def __init__(self, out_dir, label_set, item_paths):
        self.out_dir = out_dir
        self.label_set = label_set
        self.base = common_base(item_paths)
        self.videos = {}        # path -> (writer, temp file, final path)
        outputs.mark_annotations(out_dir)

    def target(self, path, ext=None):
        """The input's path relative to the inputs' common folder, under the output folder."""
        rel = path if path.startswith("webcam") else os.path.relpath(os.path.abspath(path), self.base)
        if ext:
            rel = os.path.splitext(rel)[0] + ext
        return os.path.join(self.out_dir, rel)

    def add(self, item):
        image = draw(item.image, item.faces, self.label_set)
        if item.frame is None:
            target = self.target(item.source)
            ext = os.path.splitext(target)[1].lower()
            if ext not in (".png", ".jpg", ".jpeg", ".bmp"):
                target, ext = os.path.splitext(target)[0] + ".png", ".png"
            ok, data = cv2.imencode(ext, image)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with atomic.atomic_file(target, "wb") as f:
                f.write(data.tobytes())
            return
        if item.source not in self.videos:
            final = self.target(f"webcam{item.source}" if item.source.isdigit() else item.source, ".mp4")
            tmp = atomic.sibling_temp(final, suffix=".mp4")
            fps = cv2.VideoCapture(item.source).get(cv2.CAP_PROP_FPS) if not item.source.isdigit() else 0
            writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), fps or 25.0,
                                     (image.shape[1], image.shape[0]))
            self.videos[item.source] = (writer, tmp, final)
        self.videos[item.source][0].write(image)

    def finish_video(self, path):
        if path in self.videos:
            writer, tmp, final = self.videos.pop(path)
            writer.release()
            atomic.publish_file(tmp, final)

    def close(self):
        """Close and publish every open video (after Ctrl-C: the frames drawn so far)."""
        for path in list(self.videos):
            self.finish_video(path)
