"""A run's typed plumbing, kept apart from the hyper-parameters: what the data and the run loop
decide (model, label set, input size, record folder, splits, step budget, class weights ...).

The Estimator gets the hyper-parameters as its `params` (what an export records and a rebuild
reads back); the model_fn and input_fn get a `RunSpec` bound to them.
"""
import dataclasses


@dataclasses.dataclass(frozen=True)
class RunSpec:
    model: str
    classes: tuple
    image_size: tuple                     # (height, width, channels) the network consumes
    data_dir: str = None
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
        return cls(model=meta["model"], classes=tuple(meta["label_set"]["classes"]),
                   image_size=tuple(meta["image_size"]))
