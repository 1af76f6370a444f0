"""How small a face each detector finds: the sample photo's two faces (tests/data/two_faces.jpg)
shrunk and pasted into blank grey scenes of 640x480, 1280x960 and 1920x1440, found by `dlib`
(the seed's pipeline at predict's default upsampling), `blazeface` (short range) and
`blazeface_auto` (the default: the full range added for wide shots), with milliseconds per
scene.

    python bench/bench_small_faces.py
Ends by printing, per detector and scene width, the smallest face width at which it found both
faces.
"""
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from fer_tf import faces  # noqa: E402

SCENES = (640, 1280, 1920)
SCALES = (1.0, 0.75, 0.5)        # of the photo's own faces, about 92 px wide


def scene(rgb, width, scale):
    small = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = np.full((width * 3 // 4, width, 3), 128, np.uint8)
    canvas[width // 4:width // 4 + small.shape[0], width // 3:width // 3 + small.shape[1]] = small
    return canvas


def main():
    rgb = faces.load_image(os.path.join(ROOT, "tests", "data", "two_faces.jpg"))
    face_width = 92
    # dlib at predict's default: one upsampling only for images under 256 px (none here)
    pipelines = {name: faces.FacePipeline(detector=name, landmarks=False)
                 for name in ("dlib", "blazeface", "blazeface_auto")}
    smallest = {name: {} for name in pipelines}
    for width in SCENES:
        for scale in SCALES:
            picture = scene(rgb, width, scale)
            row = []
            for name, pipeline in pipelines.items():
                start = time.perf_counter()
                found = pipeline.detect(picture)
                ms = (time.perf_counter() - start) * 1000
                row.append(f"{name} {len(found)} of 2 ({ms:.1f} ms)")
                if len(found) == 2:
                    smallest[name][width] = min(smallest[name].get(width, 999), face_width * scale)
            print(f"{width}x{width * 3 // 4}, faces ~{face_width * scale:.0f} px: " + " | ".join(row))
    for name, found in smallest.items():
        sizes = [found.get(width) for width in SCENES]
        print(f"{name}: smallest faces found (both) per scene width: "
              + ", ".join(f"{w}: {'none' if s is None else f'{s:.0f} px'}" for w, s in zip(SCENES, sizes)))


if __name__ == "__main__":
    main()
