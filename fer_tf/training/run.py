"""The run loop: RunConfig from flags (GPU and TF_CONFIG honoured), train_and_evaluate over the
whole eval split, best-checkpoint SavedModel export, resume from the model dir."""
import dataclasses
import fcntl
import json
import os
import time

import tensorflow as tf

from fer_tf.core import atomic
from fer_tf import models
from fer_tf.data import records, soft_labels
from fer_tf.core.errors import FerTfError, UsageError
from fer_tf.core import export_format
from fer_tf.core.outputs import best_export
from fer_tf.training import inputs, progress, tasks, warm_start
from fer_tf.training.config import RunMeta, RunSpec
from fer_tf.core.export_format import INPUT_KEY
LOCK_FILE = ".fer_tf.lock"


class ModelDirLock:
    """An exclusive flock on the model dir: a second trainer refuses instead of interleaving
    checkpoints. The kernel drops the lock when the process dies, even by SIGKILL."""

    def __init__(self, model_dir):
        self.path = os.path.join(model_dir, LOCK_FILE)
        self.fd = None

    def __enter__(self):
        if cluster_task_type() not in (None, "chief", "master"):
            return self      # workers, ps and evaluator share the chief's model dir by design
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(self.fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(self.fd)
            raise FerTfError(f"{os.path.dirname(self.path)}: model dir is in use by another "
                             f"fer-tf train (pid {owner}); wait for it or use another --model-dir")
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, str(os.getpid()).encode(), 0)
        return self

    def __exit__(self, *exc):
        if self.fd is None:
            return
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def cluster_task_type():
    """This process's role from TF_CONFIG (None when training alone)."""
    tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    return (tf_config.get("task") or {}).get("type")


def class_weight_values(manifest, mode, train_split="train"):
    """'balanced': n / (k * n_c) from the training counts (sklearn's definition); 'sqrt': its
    square root, a milder push toward rare classes that costs less overall accuracy."""
    if mode == "none":
        return None
    counts = manifest.split_per_class(train_split)
    total, k = sum(counts), len(counts)
    weights = [total / (k * max(c, 1)) for c in counts]
    return [w ** 0.5 for w in weights] if mode == "sqrt" else weights


def check_run_meta(model_dir, meta, write=True):
    """A model dir belongs to one model and label set; reusing it for another is an error."""
    old = RunMeta.read(model_dir)
    if old:
        old.refuse_other(meta, model_dir)
    if write:
        meta.write(model_dir)


def session_config(mixed_precision="none"):
    """bf16: oneDNN's bfloat16 auto-mixed-precision graph rewrite (CPUs with AVX-512 BF16 / AMX);
    variables and the exported graph stay float32."""
    if mixed_precision in (None, "none"):
        return None
    config = tf.compat.v1.ConfigProto()
    rewrite = config.graph_options.rewrite_options
    rewrite.auto_mixed_precision_onednn_bfloat16 = rewrite.ON
    return config


def make_run_config(model_dir, save_steps, seed, strategy=None, mixed_precision="none",
                    summary_steps=100):
    """TF_CONFIG, if set, makes this process one member of a cluster (chief/worker/ps/evaluator);
    the Estimator reads it itself. Devices are left to TensorFlow, so a visible GPU is used."""
    train_distribute = None
    if strategy == "mirrored":
        train_distribute = tf.distribute.MirroredStrategy()
    elif strategy == "multi_worker":
        train_distribute = tf.distribute.experimental.MultiWorkerMirroredStrategy()
    elif strategy == "parameter_server":
        train_distribute = tf.compat.v1.distribute.experimental.ParameterServerStrategy()
    elif strategy not in (None, "none"):
        raise FerTfError(f"--strategy: unknown {strategy!r}; use mirrored, multi_worker or "
                         "parameter_server")
    return tf.estimator.RunConfig(
        model_dir=model_dir, tf_random_seed=seed, save_checkpoints_steps=save_steps,
        keep_checkpoint_max=3, save_summary_steps=summary_steps, log_step_count_steps=100,
        train_distribute=train_distribute, session_config=session_config(mixed_precision))


@dataclasses.dataclass(frozen=True)
class Prepared:
    """Everything a run needs, resolved and checked before any work: the model, its task, the
    record folder's manifest and label set, the hyper-parameters and the plumbing."""
    spec: models.ModelSpec
    task: tasks.Task
    manifest: records.Manifest
    label_set: object
    params: dict
    run: RunSpec


def prepare(model_name, data_dir, overrides=None, splits=None, max_steps=None, seed=None,
            skip_corrupt=False, teacher=None):
    """Resolve and check model, task, records and hyper-parameters (raises on any mismatch)."""
    spec = models.get(model_name)
    task = tasks.of(spec)
    manifest = records.read_manifest(data_dir)
    label_set = manifest.labels
    if spec.label_set and spec.label_set != label_set.name:
        raise FerTfError(f"--data {data_dir}: records carry label set {label_set.name}, model "
                         f"{spec.name} needs {spec.label_set}")
    have = manifest.kind
    if have != task.records:
        hint = {"features": "a bottleneck cache from `fer-tf bottleneck`",
                "landmarks": "landmark records (fer-tf records --dataset landmarks)",
                "images": "image records"}
        raise FerTfError(f"--data {data_dir}: model {spec.name} needs {hint[task.records]}, "
                         f"this folder holds {have}")
    params = spec.resolve_hparams(overrides)
    height = spec.image_size[0]
    if params["crop_size"] >= height:
        raise UsageError(f"--hparams crop_size={params['crop_size']}: must be below the model's "
                         f"input size {height} (0 trains on the whole face)")
    if params["lr_schedule"] == "plateau" and not task.schedules:
        raise UsageError(f"--hparams lr_schedule=plateau: not available for the Keras model "
                         f"{spec.name}; use constant, cosine, step or exponential")
    if params["tta"] == "ten_crop" and not params["crop_size"]:
        raise UsageError("--hparams tta=ten_crop: needs a model trained on crops (crop_size > 0)")
    if params["loss"] == "votes" and not manifest.has_votes:
        raise FerTfError(f"--hparams loss=votes needs FER+ votes, but {data_dir} has none; "
                         "convert with --ferplus fer2013new.csv")
    splits = {"train": "train", "eval": "eval", **(splits or {})}
    for role, split in splits.items():
        try:
            manifest.resolve_split(split)
        except FerTfError as e:
            raise FerTfError(f"--{role}-split {split}: {e} in {data_dir}") from None
    if teacher:
        if not task.distills:
            raise UsageError(f"--teacher: distillation needs a classifier trained on image "
                             f"records, not {spec.name} on {data_dir}")
        soft_labels.check(teacher, label_set, splits["train"],
                          manifest.split_count(splits["train"]))
    run = RunSpec(model=spec.name, classes=tuple(label_set.classes),
                  image_size=tuple(spec.image_size),
                  train_split=splits["train"], eval_split=splits["eval"], max_steps=max_steps,
                  class_weights=class_weight_values(manifest, params["class_weights"],
                                                    splits["train"]),
                  feature_dim=manifest.feature_dim, skip_corrupt=skip_corrupt, seed=seed,
                  teacher=teacher)
    return Prepared(spec, task, manifest, label_set, params, run)


def export_meta(prepared):
    return export_format.ExportMeta(
        model=prepared.spec.name, label_set=prepared.label_set.to_json(),
        image_size=tuple(prepared.spec.image_size), input=INPUT_KEY, hparams=prepared.params)


def describe_damage(damaged):
    return "; ".join(f"{path}: {problem} ({readable} of {expected} records readable)"
                     for path, readable, expected, problem in damaged)


def describe_undecodable(bad, shown=3):
    text = "; ".join(f"{path}: record {index} cannot be decoded ({problem})"
                     for path, index, problem in bad[:shown])
    return text + (f"; and {len(bad) - shown} more undecodable record(s)" if len(bad) > shown else "")


def describe_problems(damaged, bad, data_dir):
    parts = [p for p in (describe_damage(damaged), describe_undecodable(bad)) if p]
    return "; ".join(parts) if parts else f"{data_dir}: corrupt record data"


class StepCountHook(tf.compat.v1.train.SessionRunHook):
    """Counts the training steps this process ran and records them in
    MODEL_DIR/steps/TASK.json at the end, so a cluster run shows who contributed; with a
    fingerprint of the weights it ends with (synchronous replicas end with the same one)."""

    def begin(self):
        weights = tf.compat.v1.trainable_variables()
        self.fingerprint = tf.add_n([tf.reduce_sum(tf.abs(tf.cast(v, tf.float64)))
                                     for v in weights]) if weights else None

    def __init__(self, model_dir):
        task = json.loads(os.environ.get("TF_CONFIG") or "{}").get("task") or {}
        self.path = os.path.join(model_dir, "steps",
                                 f"{task.get('type', 'local')}_{task.get('index', 0)}.json")
        self.steps = 0
        self.first = self.last = None

    def after_run(self, run_context, run_values):
        self.steps += 1
        self.last = time.time()
        self.first = self.first or self.last

    def end(self, session):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        step = int(session.run(tf.compat.v1.train.get_global_step()))
        rate = (self.steps - 1) / (self.last - self.first) if self.steps > 1 and self.last > self.first else None
        fingerprint = float(session.run(self.fingerprint)) if self.fingerprint is not None else None
        atomic.write_json(self.path, {"local_steps": self.steps, "global_step_at_end": step,
                                      "steps_per_s_after_first": rate, "pid": os.getpid(),
                                      "weights_fingerprint": fingerprint})


def train(model_name, data_dir, model_dir, overrides=None, epochs=None, max_steps=None,
          eval_every_epochs=1, checkpoint_steps=None, seed=0, strategy=None,
          skip_corrupt=False, vggface2_weights=None, allow_random_init=False, splits=None,
          progress_bar=False, init_from=None, teacher=None, log=print):
    """train_and_evaluate; returns (final eval metrics, path of the best export). `splits` maps
    train/eval to other record splits (cross-validation folds); `init_from`: an export or model
    dir of the same architecture whose matching weights start the run (warm_start.py)."""
    prepared = prepare(model_name, data_dir, overrides, splits, seed=seed,
                       skip_corrupt=skip_corrupt, teacher=teacher)
    spec, task, manifest, params = prepared.spec, prepared.task, prepared.manifest, prepared.params
    if init_from and not task.warm_starts:
        raise UsageError(f"--init-from: not available for {spec.name} ({task.name} models)")
    if init_from:
        warm_start.source(init_from)          # checked before any work
    n_train = manifest.split_count(prepared.run.train_split)
    manifest.split_files(prepared.run.train_split)
    manifest.split_files(prepared.run.eval_split)
    steps_per_epoch = max(1, n_train // params["batch_size"])
    max_steps = max_steps or (epochs or params["epochs"]) * steps_per_epoch
    run = dataclasses.replace(prepared.run, max_steps=max_steps)
    # The epochs actually run go into the export's metadata, not the model's default.
    params = {**params, "epochs": max_steps / steps_per_epoch}
    prepared = dataclasses.replace(prepared, params=params, run=run)
    if skip_corrupt:
        for split in (run.train_split, run.eval_split):
            damaged = records.damaged_shards(manifest, split)
            bad = records.undecodable_records(manifest, split)
            if damaged or bad:
                lost = sum(expected - readable for _, readable, expected, _ in damaged) + len(bad)
                log(f"--skip-corrupt: skipping {lost} unreadable {split} record(s): "
                    + describe_problems(damaged, bad, data_dir))
    os.makedirs(model_dir, exist_ok=True)
    with ModelDirLock(model_dir):
        check_run_meta(model_dir, RunMeta(model=spec.name, label_set=prepared.label_set.name,
                                          image_size=tuple(spec.image_size), data_dir=data_dir),
                       write=cluster_task_type() in (None, "chief", "master"))
        assets = export_format.write_assets(model_dir, export_meta(prepared))
        save_steps = checkpoint_steps or steps_per_epoch * eval_every_epochs
        # Summaries at least once per evaluation, so even short runs draw curves.
        config = make_run_config(model_dir, save_steps, seed, strategy, params["mixed_precision"],
                                 summary_steps=max(1, min(100, save_steps)))
        options = tasks.Options(vggface2_weights, allow_random_init, log)
        if init_from:
            traced = task.estimator(config, params, run, options)
            options = dataclasses.replace(options, warm_start=warm_start.settings(
                init_from, spec.name, traced, run, model_dir, log,
                points=task.points))
        elif spec.pretrained and tf.train.latest_checkpoint(model_dir) is None:
            traced = task.estimator(config, params, run, options)
            options = dataclasses.replace(options, warm_start=warm_start.pretrained(
                spec, traced, run, model_dir, log))
        estimator = task.estimator(config, params, run, options)
        # A head trained on cached features has no image input of its own: `fer-tf export
        # --vggface2-weights` assembles base + head into an image-bytes SavedModel afterwards.
        exporters = [] if task.receiver is None else [tf.estimator.BestExporter(
            name="best", serving_input_receiver_fn=task.receiver(spec.image_size),
            compare_fn=task.better, exports_to_keep=1,
            assets_extra=assets)]
        hooks = [StepCountHook(model_dir)]
        bar = progress.ProgressBar(max_steps, params["batch_size"]) if progress_bar else None
        hooks += [bar] if bar else []
        exporters.append(progress.EvalReporter(model_dir, steps_per_epoch, task.metric,
                                               task.higher_is_better,
                                               write=bar.write if bar else log))
        if params["lr_schedule"] == "plateau":
            hooks.append(progress.PlateauHook(model_dir, params["plateau_patience"],
                                              params["plateau_factor"], task.metric,
                                              task.higher_is_better))
        train_spec = tf.estimator.TrainSpec(
            lambda input_context=None: inputs.input_fn(tf.estimator.ModeKeys.TRAIN, params, run,
                                                       manifest, input_context),
            max_steps=max_steps, hooks=hooks)
        # steps=None: evaluate the whole eval split (the default of 100 steps would see a part).
        eval_spec = tf.estimator.EvalSpec(
            lambda input_context=None: inputs.input_fn(tf.estimator.ModeKeys.EVAL, params, run,
                                                       manifest, input_context),
            steps=None, exporters=exporters, start_delay_secs=0, throttle_secs=0)
        log(f"training {spec.name} on {data_dir}: {n_train} faces, {steps_per_epoch} steps/epoch, "
            f"max_steps {max_steps}, model dir {model_dir}")
        try:
            result = tf.estimator.train_and_evaluate(estimator, train_spec, eval_spec)
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as error:
            # TensorFlow's message does not say which file; find the damaged shard(s) and the
            # records that do not decode now.
            splits = (run.train_split, run.eval_split)
            damaged = [d for split in splits for d in records.damaged_shards(manifest, split)]
            bad = [b for split in splits for b in records.undecodable_records(manifest, split)]
            if not damaged and not bad and isinstance(error, tf.errors.InvalidArgumentError):
                raise                 # not the records' fault: let the caller see it whole
            raise FerTfError(describe_problems(damaged, bad, data_dir) + "; reconvert the records "
                             "with `fer-tf records` or pass --skip-corrupt to skip what cannot be "
                             "read") from None
        finally:
            if bar:
                bar.close()
        metrics = result[0] if result else None
        if metrics is None and cluster_task_type() is None and \
                tf.train.latest_checkpoint(model_dir) and \
                estimator.get_variable_value(tf.compat.v1.GraphKeys.GLOBAL_STEP) >= max_steps:
            # A rerun of a finished run: train_and_evaluate neither trains nor evaluates, so
            # evaluate the last checkpoint (a resumed cross-validation counts this fold too).
            metrics = estimator.evaluate(eval_spec.input_fn, steps=None)
    if metrics is None or task.receiver is None:
        return metrics, None
    return metrics, best_export(model_dir)


def cross_validate(model_name, data_dir, model_dir, folds=None, overrides=None, epochs=None,
                   seed=0, eval_every_epochs=5, init_from=None, log=print):
    """k-fold cross-validation over the manifest's folds: fold k is held out and evaluated after
    training on the others (the last evaluation, nothing selected on it). Each fold has its own
    model dir under `model_dir`, so a rerun resumes. Evaluating (and exporting) a fold every epoch
    costs more than its training on small sets, hence every `eval_every_epochs` and at the end.
    Returns the per-fold accuracies."""
    manifest = records.read_manifest(data_dir)
    available = manifest.fold_count
    if not available:
        raise FerTfError(f"--data {data_dir}: records without folds; convert with folds "
                         "(fer-tf records --dataset genki)")
    folds = folds or available
    if folds != available:
        raise FerTfError(f"--folds {folds}: {data_dir} was converted with {available} folds")
    accuracies, correct, counted = [], 0, 0
    for k in range(folds):
        others = "+".join(f"fold{j}" for j in range(folds) if j != k)
        metrics, _ = train(model_name, data_dir, os.path.join(model_dir, f"fold{k}"), overrides,
                           epochs=epochs, eval_every_epochs=eval_every_epochs, seed=seed + k,
                           splits={"train": others, "eval": f"fold{k}"}, init_from=init_from,
                           log=log)
        accuracies.append(float(metrics["accuracy"]))
        faces = manifest.split_count(f"fold{k}")
        correct += round(accuracies[-1] * faces)
        counted += faces
        log(f"fold {k}: accuracy {accuracies[-1]:.4f} on {faces} faces")
    photos = manifest.photos
    summary = {"model": model_name, "data": data_dir, "folds": folds, "accuracies": accuracies,
               "mean": sum(accuracies) / folds,
               "std": (sum((a - sum(accuracies) / folds) ** 2 for a in accuracies) / folds) ** 0.5,
               "correct": correct, "faces": counted, "photos": photos,
               # Photos where no face was found count as errors here (they were never classified).
               "accuracy_all_photos": correct / photos if photos else None,
               "init_from": init_from}
    atomic.write_json(os.path.join(model_dir, "cv.json"), summary)
    if photos and photos != counted:
        log(f"over all {photos} photos, a photo without a detected face counted wrong: accuracy "
            f"{correct / photos:.4f} ({correct} correct)")
    return accuracies
