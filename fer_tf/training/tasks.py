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
    points: bool = False            # labels are points [K, 2] (the warm start traces them)
    distills: bool = False          # its loss takes a teacher's probabilities (--teacher)
    # A run whose export is assembled from parts by `fer-tf export` (receiver None):
    # (model_dir, work_dir, weights_path, allow_random_init, log) -> SavedModel path.
    assemble: callable = None

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


def shared_estimator(make_model_fn):
    """A task's estimator on a model_fn skeleton: make_model_fn(run) -> model_fn."""
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


def _assemble_keras_head(*args):
    from fer_tf.training import keras_estimator
    return keras_estimator.assemble_head_export(*args)


TASKS = {task.name: task for task in (
    Task("classification", "images", shared_estimator(model_fn.classifier_model_fn),
         receivers.serving_input_receiver_fn, rebuild="classifier", warm_starts=True,
         distills=True),
    Task("landmarks", "landmarks", shared_estimator(model_fn.landmark_model_fn),
         lambda size: receivers.landmark_serving_input_receiver_fn(size[0]),
         metric="nme", higher_is_better=False, shown=("nme", "failure_rate_8", "failure_rate_10"),
         rebuild="landmarks", warm_starts=True, points=True),
    Task("keras", "images", _keras, receivers.serving_input_receiver_fn, schedules=False),
    Task("keras_head", "features", _keras_head, schedules=False, assemble=_assemble_keras_head),
)}


def register(task):
    """Add a task (a new kind of learning): its models name it in ModelSpec.task."""
    TASKS[task.name] = task
    return task


def get(name):
    try:
        return TASKS[name]
    except KeyError:
        raise FerTfError(f"unknown task {name!r}") from None


def of(spec):
    """The task of a registered model."""
    return get(spec.task)
