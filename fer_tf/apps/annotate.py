"""Annotated copies of the inputs: a box, the top label and a named probability bar per class for
every face ("no face found" where there is none); each copy keeps its input's path relative to
the inputs' common folder, so no two inputs share a target; videos become MP4s. Written
atomically: an interrupted video is closed and published with the frames drawn so far."""
import os

import cv2

from fer_tf.apps import heads
from fer_tf.core import atomic, outputs


def draw(rgb, faces, label_set):
    """-> BGR image with each face's box, its heads' caption (label, smile) and their marks
    (a probability bar per class, landmarks)."""
    image = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    scale = max(image.shape[:2]) / 640.0
    font, thick = 0.45 * max(scale, 0.6), max(1, int(round(scale * 1.5)))
    for face in faces:
        box = tuple(int(round(v)) for v in face.box)
        left, top, right, bottom = box
        colour = heads.bgr(next(filter(None, (h.box_colour(face, label_set) for h in face.heads)),
                                "#ffffff"))
        cv2.rectangle(image, (left, top), (right, bottom), colour, thick)
        text = "".join(head.caption(face) for head in face.heads)
        cv2.putText(image, text, (left, max(12, top - 4)), cv2.FONT_HERSHEY_SIMPLEX, font, colour,
                    thick, cv2.LINE_AA)
        for head in face.heads:
            head.draw(image, face, label_set, {"scale": scale, "thick": thick, "box": box})
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
