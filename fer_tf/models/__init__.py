"""Registry: model name -> builder, normalisation, label set, input size, default hyper-parameters.

Every builder has the same signature, `build(images, num_classes, is_training, params) -> logits`,
where `images` are already normalised by the model's own `normalize`. A model file knows nothing
about files or flags.
"""
import dataclasses
import importlib
import pkgutil

from fer_tf.core import hparams as hp
from fer_tf.core.errors import UsageError
from fer_tf.core.hparams import HParam

# Shared declarations; a model's own hparams override the defaults (not the ranges), and
# `--hparams` overrides both after checking (fer_tf/core/hparams.py).
COMMON_HPARAMS = {
    "batch_size": HParam(64, low=1),
    "epochs": HParam(30, low=1),
    "optimizer": HParam("adam", choices=("adam", "momentum", "sgd")),
    "learning_rate": HParam(1e-3, low=0, low_open=True),
    "lr_schedule": HParam("cosine", choices=("constant", "cosine", "step", "exponential", "plateau")),
    "plateau_patience": HParam(5, low=1),      # evaluations without a new best before a drop
    "plateau_factor": HParam(0.5, low=0, high=1, low_open=True, high_open=True),
    "momentum": HParam(0.9, low=0, high=1, high_open=True),
    "weight_decay": HParam(1e-4, low=0),       # L2 on kernels, added to the loss
    "keep_prob": HParam(0.5, low=0, high=1, low_open=True),   # dropout keep probability
    "loss": HParam("ce", choices=("ce", "votes")),  # majority label | FER+ vote distribution
    "distill_weight": HParam(0.5, low=0, high=1),   # share of the teacher's loss (--teacher)
    "class_weights": HParam("none", choices=("none", "balanced", "sqrt")),
    "balanced_sampling": HParam(False),         # resample training faces to uniform classes
    "label_smoothing": HParam(0.0, low=0, high=1, high_open=True),
    "augment": HParam(True),
    "crop_size": HParam(0, low=0),              # >0: train on random crops; serve the centre crop
    "random_erasing": HParam(0.0, low=0, high=1),   # probability of erasing one rectangle
    "tta": HParam("none", choices=("none", "flip", "ten_crop")),   # test-time views in the graph
    "mixed_precision": HParam("none", choices=("none", "bf16")),   # oneDNN bfloat16 rewrite (CPU)
}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    build: callable
    normalize: callable
    image_size: tuple                 # (height, width, channels) the network consumes
    label_set: str = None             # None: whatever the record manifest says
    hparams: dict = dataclasses.field(default_factory=dict)
    description: str = ""
    task: str = "classification"      # fer_tf/training/tasks.py: what it learns and how it runs
    keras_model: callable = None      # Keras models: (num_classes, params) -> tf.keras.Model
    # Keras models' pretrained weights: (model, run options) -> None; loads them or refuses.
    keras_weights: callable = None
    # Pretrained start: (out_dir) -> prefix of a checkpoint whose variables are named like the
    # training graph's; a new run warm-starts from it unless --init-from says otherwise.
    pretrained: callable = None
    # (normalised images, params, num_classes) -> the features a smile head can share
    # (fer-tf smile-head fits SMILE_HEAD on them; the build adds it with params["smile_head"]).
    features: callable = None

    def hparam_specs(self):
        """name -> HParam: the shared declarations with this model's defaults and its own."""
        return hp.specs(COMMON_HPARAMS, self.hparams)

    def default_hparams(self):
        return {name: p.default for name, p in self.hparam_specs().items()}

    def resolve_hparams(self, overrides=None):
        """Defaults overridden by checked `--hparams` values (a bad one: UsageError, exit 2)."""
        return hp.resolve(self.hparam_specs(), overrides)


SMILE_HEAD = "smile_logits"         # the variable scope of a fitted smile head

_REGISTRY = {}
_LOADED = []


def register(spec):
    _REGISTRY[spec.name] = spec
    return spec


def unregister(name):
    """Forget a model registered at run time (a test's own)."""
    _REGISTRY.pop(name, None)


def _load_all():
    """Import every module of this package once: a model file registers itself on import, so
    adding a model means adding one file."""
    if _LOADED:
        return
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    _LOADED.append(True)


def names():
    _load_all()
    return sorted(_REGISTRY)


def get(name):
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UsageError(f"--model: unknown model {name!r}; known models: {', '.join(names())}") from None
