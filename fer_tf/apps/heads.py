"""Per-face heads: every output the Analyzer gives a face beyond its box and score, declared once.

A head fills one attribute of each `Face` — from the face pipeline's findings (`detected`) or
from the face's aligned crops, a batch of faces at a time (`predict`) — and declares how that
output is shown:
- `fields`: its keys in `Face.to_dict()` and in predict's jsonl rows (so also `/v1/analyze`);
- `csv_columns` / `csv_cells`: its columns in predict's csv (`trailing`: after `error`);
- `frame_values`: its columns in `Results.to_pandas()`;
- `inline` / `lines`: its text in predict's table;
- `caption`, `box_colour`, `draw`: its marks on an annotated copy.
The Analyzer runs its heads in order and the writers, the DataFrame and the annotations read only
these declarations, so a new per-face output is one new head (and the Analyzer keyword that
adds it).
"""
import json

import cv2
import numpy as np


class FaceHead:
    attribute = None          # the Face attribute it fills
    trailing = False          # its csv columns go after `error` (long values)
    reported = True           # shown in predict's rows (an output used only to align: False)

    def models(self):
        """The exports whose aligned crops it reads (the Analyzer aligns each face once per
        model input size)."""
        return ()

    def detected(self, face, found):
        """Fill from the face pipeline's `faces.Face` (box, landmarks, eyes)."""

    def predict(self, faces, crops):
        """Fill `faces` (a batch, in order) from `crops`: per face, {model: uint8 crop}."""

    def fields(self, face, rounded=False):
        """{key: plain value} for JSON; `rounded`: as predict writes them."""
        return {}

    def csv_columns(self, classes):
        return []

    def csv_cells(self, values, classes):
        """Its csv cells from its `fields` (rounded) of one row."""
        return []

    def frame_values(self, face):
        return {}

    def inline(self, values):
        """Its text on a face's table line, from its `fields` of the row."""
        return ""

    def lines(self, values):
        """Its own table lines under the face's, from its `fields` of the row."""
        return ""

    def caption(self, face):
        return ""

    def box_colour(self, face, label_set):
        return None

    def draw(self, image, face, label_set, style):
        """Draw on a BGR image; style: {"scale", "thick", "box": (left, top, right, bottom)}."""


class ExpressionHead(FaceHead):
    """Class probabilities from an expression export (and its P(smile) when it has a smile head,
    from the same forward pass: `smiles`, read by SmileHead)."""
    attribute = "probabilities"

    def __init__(self, model):
        self.model = model
        self.classes = model.label_set.classes
        self.smiles = None

    def models(self):
        return (self.model,)

    def predict(self, faces, crops):
        probabilities, self.smiles = self.model.predict_faces_and_smiles(
            np.stack([c[self.model] for c in crops]))
        for face, p in zip(faces, probabilities):
            face.probabilities = p

    def fields(self, face, rounded=False):
        emotions = face.emotions
        if rounded:
            emotions = {c: round(p, 6) for c, p in emotions.items()}
        return {"label": face.label, "probabilities": emotions}

    def csv_columns(self, classes):
        return ["label", *classes]

    def csv_cells(self, values, classes):
        probabilities = values.get("probabilities")
        return [values.get("label", ""), *([f"{probabilities[c]:.6f}" for c in classes]
                                        if probabilities else [""] * len(classes))]

    def frame_values(self, face):
        return {"label": face.label, **face.emotions}

    def inline(self, values):
        top = sorted(values["probabilities"].items(), key=lambda kv: -kv[1])[:3]
        return f"{values['label']}  (" + ", ".join(f"{c} {p:.2f}" for c, p in top) + ")"

    def caption(self, face):
        k = int(face.probabilities.argmax())
        return f"{face.classes[k]} {face.probabilities[k]:.2f}"

    def box_colour(self, face, label_set):
        return label_set.colours[int(face.probabilities.argmax())]

    def draw(self, image, face, label_set, style):
        """A named probability bar per class under the box."""
        left, _, right, bottom = style["box"]
        scale = style["scale"]
        bar_w = max(30, (right - left) // 2)
        row_h = max(9, int(11 * scale))
        small = 0.33 * max(scale, 1.0)
        for j, (name, p) in enumerate(zip(label_set.classes, face.probabilities)):
            y = bottom + 3 + j * (row_h + 1)
            if y + row_h >= image.shape[0]:
                break
            cv2.rectangle(image, (left, y), (left + bar_w, y + row_h), (60, 60, 60), -1)
            cv2.rectangle(image, (left, y), (left + int(bar_w * float(p)), y + row_h),
                          bgr(label_set.colours[j]), -1)
            cv2.putText(image, f"{name} {float(p):.2f}", (left + bar_w + 3, y + row_h - 1),
                        cv2.FONT_HERSHEY_SIMPLEX, small, (255, 255, 255), 1, cv2.LINE_AA)


class SmileHead(FaceHead):
    """P(smile): from the expression export's own smile head (one forward pass per face), or
    from a smile model (a two-class export with a `smile` class) run on its own crops."""
    attribute = "smile"

    def __init__(self, model=None, expression=None):
        self.model, self.expression = model, expression

    def models(self):
        return (self.model,) if self.model is not None else ()

    def predict(self, faces, crops):
        if self.model is None:
            smiles = self.expression.smiles
        else:
            index = self.model.label_set.classes.index("smile")
            smiles = self.model.predict_faces(np.stack([c[self.model] for c in crops]))[:, index]
        for face, p in zip(faces, smiles):
            face.smile = float(p)

    def fields(self, face, rounded=False):
        if face.smile is None:
            return {}
        return {"smile": round(face.smile, 6) if rounded else float(face.smile)}

    def csv_columns(self, classes):
        return ["smile"]

    def csv_cells(self, values, classes):
        return [f"{values['smile']:.6f}" if "smile" in values else ""]

    def frame_values(self, face):
        return {"smile": face.smile}

    def inline(self, values):
        return f"  smile {values['smile']:.2f}" if "smile" in values else ""

    def caption(self, face):
        return f"  smile {face.smile:.2f}" if face.smile is not None else ""


class LandmarksHead(FaceHead):
    """The 68 points the face pipeline placed (dlib's predictor or the landmark CNN)."""
    attribute = "landmarks"
    trailing = True

    def __init__(self, reported=True):
        self.reported = reported

    def detected(self, face, found):
        face.landmarks = found.landmarks

    def fields(self, face, rounded=False):
        if face.landmarks is None:
            return {}
        points = np.round(face.landmarks, 1) if rounded else np.asarray(face.landmarks, float)
        return {"landmarks": points.tolist()}

    def csv_columns(self, classes):
        return ["landmarks"]

    def csv_cells(self, values, classes):
        return [json.dumps(values["landmarks"]) if "landmarks" in values else ""]

    def lines(self, values):
        if "landmarks" not in values:
            return ""
        return "    landmarks: " + " ".join(f"{x:.1f},{y:.1f}" for x, y in values["landmarks"]) + "\n"

    def draw(self, image, face, label_set, style):
        if face.landmarks is not None:
            for x, y in np.round(face.landmarks).astype(int):
                cv2.circle(image, (x, y), max(1, style["thick"] - 1), (0, 255, 0), -1)


def bgr(hex_colour):
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return (b, g, r)
