"""A run's typed plumbing, kept apart from the hyper-parameters: what the data and the run loop
decide (model, label set, input size, splits, step budget, class weights ...); the record
folder travels as its `records.Manifest`, read once.

The Estimator gets the hyper-parameters as its `params` (what an export records and a rebuild
reads back); the model_fn and input_fn get a `RunSpec` bound to them.
"""
import dataclasses
import os

from fer_tf.core import atomic
from fer_tf.core.errors import FerTfError
from fer_tf.core.outputs import RUN_META


@dataclasses.dataclass(frozen=True)
class RunSpec:
    model: str
    classes: tuple
    image_size: tuple                     # (height, width, channels) the network consumes
    train_split: str = "train"            # record split names; cross-validation passes folds
    eval_split: str = "eval"
    max_steps: int = None
    class_weights: tuple = None           # per-class loss weights (class_weights=balanced)
    feature_dim: int = None               # width of cached features (bottleneck records)
    skip_corrupt: bool = False
    seed: int = None
    teacher: str = None                   # soft-label file for distillation (data/soft_labels.py)

    @classmethod
    def for_export(cls, meta):
        """The plumbing an export's graph needs to be rebuilt: model, classes, input size."""
        return cls(model=meta.model, classes=tuple(meta.classes), image_size=tuple(meta.image_size))


@dataclasses.dataclass(frozen=True)
class RunMeta:
    """A model dir's fer_tf_run.json, typed — its one reader, validator and writer: the model,
    label set and input size the dir was made for (one of each per dir) and the records it was
    first trained on."""
    model: str
    label_set: str                        # the label set's name
    image_size: tuple
    data_dir: str = None

    # field -> the flag that chose it (named when a rerun asks for another)
    FLAGS = {"model": "--model", "label_set": "--data", "image_size": "--model"}

    @staticmethod
    def path(model_dir):
        return os.path.join(model_dir, RUN_META)

    @classmethod
    def read(cls, model_dir):
        """The dir's RunMeta, or None where no run has started; damaged: one line."""
        path = cls.path(model_dir)
        if not os.path.isfile(path):
            return None
        data = atomic.read_json(path, "not a fer-tf model dir's; use another --model-dir")
        missing = [f for f in cls.FLAGS if f not in (data if isinstance(data, dict) else {})]
        if missing:
            raise FerTfError(f"{path}: field {missing[0]!r} is missing; use another --model-dir")
        return cls(model=data["model"], label_set=data["label_set"],
                   image_size=tuple(data["image_size"]), data_dir=data.get("data_dir"))

    def write(self, model_dir):
        atomic.write_json(self.path(model_dir), {**dataclasses.asdict(self),
                                                 "image_size": list(self.image_size)})

    def refuse_other(self, wanted, model_dir):
        """A model dir belongs to one model, label set and input size: `wanted` differing from
        this dir's in any of them is refused, naming the flag."""
        for field, flag in self.FLAGS.items():
            have, want = getattr(self, field), getattr(wanted, field)
            if have != want:
                shown = (list(have), list(want)) if field == "image_size" else (have, want)
                raise FerTfError(
                    f"{self.path(model_dir)}: this model dir was made for {field} {shown[0]}, "
                    f"not {shown[1]} (from {flag}); use a new --model-dir or the original {flag}")
