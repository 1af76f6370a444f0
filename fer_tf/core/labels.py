"""Label sets: class names in index order, and a colour per class for plots.

A label set travels with the data (records manifest) and with the model (export assets), so a
model trained on one set is never silently evaluated on another.
"""
import dataclasses
import hashlib

from fer_tf.core.errors import FerTfError


@dataclasses.dataclass(frozen=True)
class LabelSet:
    name: str
    classes: tuple
    colours: tuple

    @property
    def num_classes(self):
        return len(self.classes)

    def to_json(self):
        return {"name": self.name, "classes": list(self.classes)}


# Kaggle FER2013 order: 0 angry ... 6 neutral.
FER7 = LabelSet(
    "fer7",
    ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"),
    ("#d62728", "#8c564b", "#9467bd", "#ffbf00", "#1f77b4", "#17becf", "#7f7f7f"),
)

# FER+ (Barsoum et al. 2016) column order of fer2013new.csv.
FERPLUS8 = LabelSet(
    "ferplus8",
    ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"),
    ("#7f7f7f", "#ffbf00", "#17becf", "#1f77b4", "#d62728", "#8c564b", "#9467bd", "#e377c2"),
)

SMILE2 = LabelSet("smile2", ("no smile", "smile"), ("#1f77b4", "#ffbf00"))

# Not classes: the 68 iBUG points a landmark model regresses (0-based index names), so landmark
# records and models carry a label set like every other record folder and export.
LANDMARKS68 = LabelSet("landmarks68", tuple(f"p{i}" for i in range(68)), ("#00ff00",) * 68)

LABEL_SETS = {ls.name: ls for ls in (FER7, FERPLUS8, SMILE2, LANDMARKS68)}


def get(name):
    try:
        return LABEL_SETS[name]
    except KeyError:
        raise FerTfError(
            f"unknown label set {name!r}; known: {', '.join(sorted(LABEL_SETS))}") from None


# Colours for label sets a user brings (matplotlib's tab10, then repeated).
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
CUSTOM_PREFIX = "custom-"


def custom(classes):
    """The label set of a user's own photos (`fer-tf records --dataset folder|csv`): its name
    carries a hash of the class list, so two different sets never pass for one another."""
    classes = tuple(classes)
    if len(classes) < 2:
        raise FerTfError(f"a label set needs at least two classes, found {list(classes)}")
    digest = hashlib.sha1("\n".join(classes).encode()).hexdigest()[:8]
    return LabelSet(CUSTOM_PREFIX + digest, classes,
                    tuple(PALETTE[i % len(PALETTE)] for i in range(len(classes))))


def from_json(obj):
    """The label set a manifest or export describes; it must match a known one exactly."""
    if obj["name"].startswith(CUSTOM_PREFIX):
        label_set = custom(obj["classes"])
        if label_set.name != obj["name"]:
            raise FerTfError(f"label set {obj['name']!r} does not match its classes "
                             f"{obj['classes']} (edited by hand?)")
        return label_set
    label_set = get(obj["name"])
    if list(obj["classes"]) != list(label_set.classes):
        raise FerTfError(f"label set {obj['name']!r} lists classes {obj['classes']}, "
                         f"expected {list(label_set.classes)}")
    return label_set


def is_json(obj):
    """Whether `obj` has a label set's JSON shape: a name and a list of classes (what
    `from_json` then checks against the known sets)."""
    return (isinstance(obj, dict) and isinstance(obj.get("name"), str)
            and isinstance(obj.get("classes"), list))


class WithLabelSet:
    """For a typed file owner whose `label_set` field holds a label set's JSON form."""

    @property
    def labels(self):
        """The label set as a LabelSet."""
        return from_json(self.label_set)

    @property
    def classes(self):
        return list(self.label_set["classes"])
