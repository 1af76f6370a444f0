"""Tasks: what kind of learning a registered model does, and every part the run loop, export,
evaluation and benches need for it. A model names its task (`ModelSpec.task`); nothing else
asks which kind of model it has.

| task | records | estimator | exported by training | best export by |
|---|---|---|---|---|
| classification | images | the shared model_fn + ClassifierHead | image_bytes receiver | accuracy |
| landmarks | landmarks | the shared model_fn + LandmarkHead | image_bytes + box receiver | NME |
| keras | images | a Keras model through model_to_estimator | image_bytes receiver | accuracy |
| keras_head | features | a Keras head on cached features | none (`fer-tf export` assembles) | accuracy |
"""
import dataclasses

import tensorflow as tf

from fer_tf.core.errors import FerTfError
from fer_tf.training import model_fn, receivers


@dataclasses.dataclass(frozen=True)
class Task:
    name: str
    records: str                    # the record-folder kind it trains on (inputs.PARTS)
    estimator: callable             # (config, params, run, options) -> tf.estimator.Estimator
    receiver: callable = None       # (image_size) -> serving_input_receiver_fn; None: no export
    metric: str = "accuracy"        # selects the best export
    higher_is_better: bool = True
    shown: tuple = ("accuracy", "mean_per_class_accuracy")
    # What `fer-tf export` rebuilds its exports as (serving/rebuild.py): "classifier" (float16 /
    # int8 storage, test-time views, ensembles, TFLite), "landmarks" (storage and the batched
    # crops signature), or None (exported as they are).
    rebuild: str = None
    schedules: bool = True          # honours lr_schedule (plateau included)
    warm_starts: bool = False       # can start from another run's weights (--init-from)

    def better(self, best_eval_result, current_eval_result):
        """BestExporter's compare_fn."""
        best, now = best_eval_result[self.metric], current_eval_result[self.metric]
        return now > best if self.higher_is_better else now < best


@dataclasses.dataclass(frozen=True)
class Options:
    """Run options that only some tasks use (the Keras ones)."""
    vggface2_weights: str = None
    allow_random_init: bool = False
    log: callable = print
    warm_start: object = None       # tf.estimator.WarmStartSettings (--init-from)


def _estimator(make_model_fn):
    def build(config, params, run, options):
        return tf.estimator.Estimator(make_model_fn(run), config=config, params=params,
                                      warm_start_from=options.warm_start)
    return build


def _keras(config, params, run, options):
    from fer_tf.training import keras_estimator      # Keras pulls in more; load it on demand
    return keras_estimator.keras_estimator(config, params, run, options)


def _keras_head(config, params, run, options):
    from fer_tf.training import keras_estimator
    return keras_estimator.head_estimator(config, params, run)


TASKS = {task.name: task for task in (
    Task("classification", "images", _estimator(model_fn.classifier_model_fn),
         receivers.serving_input_receiver_fn, rebuild="classifier", warm_starts=True),
    Task("landmarks", "landmarks", _estimator(model_fn.landmark_model_fn),
         lambda size: receivers.landmark_serving_input_receiver_fn(size[0]),
         metric="nme", higher_is_better=False, shown=("nme", "failure_rate_8", "failure_rate_10"),
         rebuild="landmarks", warm_starts=True),
    Task("keras", "images", _keras, receivers.serving_input_receiver_fn, schedules=False),
    Task("keras_head", "features", _keras_head, schedules=False),
)}


def get(name):
    try:
        return TASKS[name]
    except KeyError:
        raise FerTfError(f"unknown task {name!r}") from None


def of(spec):
    """The task of a registered model."""
    return get(spec.task)
