"""The layout of a fer-tf export, owned here: a SavedModel (TF Serving's format) with fer-tf's
metadata and class names beside it, and the names of its inputs and signatures. Training, export,
rebuild, loading, serving and the output rule read these names from this module only.

    EXPORT/saved_model.pb, variables/          the graph and weights
    EXPORT/assets.extra/fer_tf.json            model, label set, image size, hyper-parameters ...
    EXPORT/assets.extra/labels.txt             the class names, one per line
"""
import dataclasses
import os

from fer_tf.core import atomic, labels
from fer_tf.core.errors import FerTfError

ASSETS_EXTRA = "assets.extra"
META_FILE = "fer_tf.json"
LABELS_FILE = "labels.txt"

INPUT_KEY = "image_bytes"                       # encoded images (PNG/JPEG/BMP, any size)
SERVING_DEFAULT = "serving_default"             # tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY
FACES_SIGNATURE = "faces"                       # uint8 faces at the export's image size
CROPS_SIGNATURE = "crops"                       # uint8 landmark crops (landmark exports)
IMAGE_ONLY_SIGNATURE = "image_only:serving_default"   # the Estimator's name for it


def meta_path(export_dir):
    return os.path.join(export_dir, ASSETS_EXTRA, META_FILE)


def write_assets(folder, meta):
    """The metadata and labels.txt, written atomically into `folder` (an export's assets.extra/,
    or a model dir whose exports copy them) -> {asset name: path}: the Estimator's assets_extra.
    The one place either file is written."""
    paths = {META_FILE: os.path.join(folder, META_FILE),
             LABELS_FILE: os.path.join(folder, LABELS_FILE)}
    atomic.write_json(paths[META_FILE], meta.to_json())
    with atomic.atomic_file(paths[LABELS_FILE]) as f:
        f.write("\n".join(meta.classes) + "\n")
    return paths


def _refuse(path, field, problem):
    return FerTfError(f"{path}: field {field!r} {problem}; export the model again with "
                      "`fer-tf export`")


@dataclasses.dataclass(frozen=True)
class ExportMeta(labels.WithLabelSet):
    """fer_tf.json, typed — the one reader, validator and writer of it (in an export's
    assets.extra/ and in a model dir, whose exports copy it): the model, its label set and input
    size, the hyper-parameters the graph is rebuilt with, and what an export adds (a prior
    correction, a smile head's report). An ensemble carries the label set and its `members`
    (each: model, hparams, image_size, weight, source); a member carries no label set of its
    own. `path`: the export (or model dir) it was read from, not written."""
    model: str
    image_size: tuple
    hparams: dict = None               # None for an ensemble (its members carry theirs)
    label_set: dict = None             # None for an ensemble's member
    input: str = None
    prior_correction: dict = None      # {"tau", "train_prior", "source"}
    smile_head: dict = None            # fer-tf smile-head's cross-validation report
    members: tuple = None              # an ensemble's members (ExportMeta)
    weight: float = None               # a member's weight in its ensemble
    source: str = None                 # a member's source export
    assembled_from: str = None         # a head on cached features: the checkpoint it came from
    path: str = dataclasses.field(default=None, compare=False)

    @classmethod
    def from_json(cls, data, where=META_FILE, member=False, path=None):
        """Validated: metadata missing a field or of the wrong shape is refused in one line
        naming `where` (the file) and the field."""
        if not isinstance(data, dict):
            raise _refuse(where, "(top)", "is not a JSON object")
        for field in ("model", "image_size"):
            if field not in data:
                raise _refuse(where, field, "is missing")
        size = data["image_size"]
        if not (isinstance(size, list) and len(size) == 3 and all(isinstance(v, int) for v in size)):
            raise _refuse(where, "image_size", "needs [height, width, channels]")
        if not member:
            if not labels.is_json(data.get("label_set")):
                raise _refuse(where, "label_set", "needs a name and a list of classes")
        members = data.get("members")
        if members is not None:
            if not (isinstance(members, list) and members):
                raise _refuse(where, "members", "needs a list of member models")
            members = tuple(cls.from_json(m, f"{where}#member{k}", member=True,
                                          path=path and f"{path}#member{k}")
                            for k, m in enumerate(members))
        elif not isinstance(data.get("hparams"), dict):
            raise _refuse(where, "hparams", "is missing")
        known = {f.name for f in dataclasses.fields(cls)} - {"path", "members"}
        unknown = sorted(set(data) - known - {"members"})
        if unknown:
            raise _refuse(where, unknown[0], "is not one this version knows")
        return cls(**{k: v for k, v in data.items() if k in known and k != "image_size"},
                   image_size=tuple(size), members=members, path=path)

    def to_json(self):
        out = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "path" or value is None:
                continue
            if field.name == "members":
                value = [m.to_json() for m in value]
            elif field.name == "image_size":
                value = list(value)
            out[field.name] = value
        return out

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    @property
    def is_ensemble(self):
        return self.members is not None

    @property
    def singles(self):
        """The single models' metadata: an ensemble's members, or this export itself."""
        return self.members if self.is_ensemble else (self,)

    @property
    def tta(self):
        """The test-time views a single model's graph averages (none, flip or ten_crop)."""
        return self.hparams.get("tta") or "none"

    @property
    def crop_size(self):
        """The crop a single model was trained on (0: the whole face)."""
        return self.hparams.get("crop_size") or 0

    @property
    def has_smile_head(self):
        """Whether its graph gives P(smile) beside the expression (fer-tf smile-head)."""
        return any(m.hparams.get("smile_head") for m in self.singles)


NOT_OURS = ("this SavedModel was not exported by fer-tf, so its label set is unknown; export it "
            "with `fer-tf export`")


def read_meta(export_dir, hint=NOT_OURS):
    """An export's (or a model dir's) ExportMeta; refused in one line (ending with `hint`) when
    fer-tf did not write one there."""
    path = meta_path(export_dir)
    if not os.path.isfile(os.path.join(export_dir, "saved_model.pb")):
        path = os.path.join(export_dir, META_FILE)          # a model dir
    data = atomic.read_json(path, hint)
    return ExportMeta.from_json(data, path, path=export_dir)
