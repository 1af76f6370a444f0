"""Registry: model name -> builder, normalisation, label set, input size, default hyper-parameters.

Every builder has the same signature, `build(images, num_classes, is_training, params) -> logits`,
where `images` are already normalised by the model's own `normalize`. A model file knows nothing
about files or flags.
"""
import dataclasses
import importlib

from fer_tf.errors import FerTfError

# Shared defaults; a model's own hparams override these, and command-line flags override both.
COMMON_HPARAMS = {
    "batch_size": 64,
    "epochs": 30,
    "optimizer": "adam",          # adam | momentum | sgd
    "learning_rate": 1e-3,
    "lr_schedule": "cosine",      # constant | cosine | step | exponential
    "momentum": 0.9,
    "weight_decay": 1e-4,         # L2 on kernels, added to the loss
    "keep_prob": 0.5,             # dropout keep probability in the dense layers
    "loss": "ce",                 # ce (majority label) | votes (FER+ vote distribution)
    "class_weights": "none",      # none | balanced
    "balanced_sampling": False,   # resample training faces to a uniform class distribution
    "label_smoothing": 0.0,
    "augment": True,
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
    kind: str = "classifier"          # classifier (shared model_fn) | keras (model_to_estimator)

    def default_hparams(self):
        return {**COMMON_HPARAMS, **self.hparams}


_REGISTRY = {}
# Model modules register themselves on import; listed here so `get` can find them by name.
_MODULES = ("fer_tf.models.lenet7", "fer_tf.models.cliquenet", "fer_tf.models.smile_cnn",
            "fer_tf.models.landmark_cnn",
            "fer_tf.models.vggface2")


def register(spec):
    _REGISTRY[spec.name] = spec
    return spec


def _load_all():
    for module in _MODULES:
        importlib.import_module(module)


def names():
    _load_all()
    return sorted(_REGISTRY)


def get(name):
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise FerTfError(f"--model: unknown model {name!r}; known models: {', '.join(names())}") from None
