"""Standalone exports of a training run's best SavedModel, and ensembles of exports.

Classifiers and landmark models are rebuilt from their metadata and weights
(fer_tf/serving/rebuild.py): the export gets a raw-pixels signature beside `image_bytes` (faces,
or landmark crops), optionally float16 or int8 weight storage (half or a quarter of the size on
disk; the computation stays float32 — weights are converted once at load) and, for
classifiers, test-time views in the graph.
"""
import os
import shutil
import tempfile

from fer_tf import models
from fer_tf.core import atomic
from fer_tf.core.errors import FerTfError
from fer_tf.data import records
from fer_tf.serving import exported, rebuild
from fer_tf.training import tasks
from fer_tf.training.config import RunMeta


def assembler_of(model_dir):
    """The task's assembler (Task.assemble) for a run whose export is assembled from parts — a
    head trained on cached features — else None."""
    run = RunMeta.read(model_dir)
    if run is None or run.model not in models.names():
        return None
    return tasks.of(models.get(run.model)).assemble


def assemble(model_dir, out, weights_path=None, allow_random_init=False, log=print):
    """A features run's head with its base -> one image-bytes SavedModel at `out` (its task's
    assembler; refused for a run that `fer-tf export` exports directly)."""
    assembler = assembler_of(model_dir)
    if assembler is None:
        raise FerTfError(f"--model-dir {model_dir}: not a run of a head on cached features; "
                         "export it with `fer-tf export --model-dir` alone")
    work = tempfile.mkdtemp(prefix="fer_tf_assemble_")
    try:
        path = assembler(model_dir, work, weights_path, allow_random_init, log)
        with atomic.atomic_directory(out) as tmp:
            os.rmdir(tmp)
            shutil.copytree(path, tmp)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def storage_of(float16, int8):
    if float16 and int8:
        raise FerTfError("--float16 and --int8: choose one weight storage")
    return "int8" if int8 else "float16" if float16 else "float32"


def with_prior(meta, prior):
    """`meta` with the prior correction `prior` = (tau, record folder) applied: the folder's
    training split gives the class frequencies; its label set must be the export's."""
    if prior is None:
        return meta
    tau, data = prior
    manifest = records.read_manifest(data)
    if manifest.label_set != meta.label_set:
        raise FerTfError(f"--prior-data {data}: label set {manifest.labels.name} is not "
                         f"the export's {meta.labels.name}; give the records it was "
                         "trained on")
    return rebuild.with_prior_correction(meta, tau, manifest.split_per_class("train"),
                                         f"{os.path.basename(os.path.normpath(data))} train split")


def export(model_dir, out, float16=False, tta=None, int8=False, prior=None):
    """A standalone SavedModel of a run's best export (or of an export): classifiers are rebuilt
    (both signatures; float16 storage, test-time views and a prior correction (tau, records) on
    request), others are copied."""
    source = exported.resolve_export(model_dir, "--model-dir")
    meta = exported.read_meta(source)       # refuses exports that carry no label set
    kind = rebuild.kind_of(meta)
    storage = storage_of(float16, int8)
    if kind is None and (storage != "float32" or tta):
        raise FerTfError(f"--model-dir {model_dir}: --float16, --int8 and --tta apply to classifiers "
                         f"and landmark models; {meta.model} is exported as it is")
    if not (kind and kind.prior) and prior is not None:
        raise FerTfError(f"--prior-tau: applies to classifiers; {meta.model} has no classes "
                         "to correct")
    if kind and not kind.views and tta:
        raise FerTfError(f"--tta: a landmark model keeps its own test-time views (`--hparams "
                         f"tta=flip` when training {meta.model}); export without --tta")
    meta = with_prior(rebuild.with_tta(meta, tta), prior)
    with atomic.atomic_directory(out) as tmp:
        if kind:
            os.rmdir(tmp)                   # the SavedModel builder wants to create the folder
            rebuild.write(meta, {"": rebuild.weight_source(source)}, tmp, storage)
        else:
            for entry in os.listdir(source):
                src = os.path.join(source, entry)
                (shutil.copytree if os.path.isdir(src) else shutil.copy2)(src, os.path.join(tmp, entry))
    return out


def ensemble(member_paths, out, weights=None, float16=False, tta=None, int8=False, prior=None):
    """One SavedModel averaging the members' probabilities (weighted), same signatures; a prior
    correction (tau, records) applies to the average. A member that is an ensemble itself is
    taken apart: its members join with its weight shared out as it weighted them."""
    weights = weights or [1.0] * len(member_paths)
    if len(weights) != len(member_paths):
        raise FerTfError(f"--weights: give one positive weight per member ({len(member_paths)})")
    metas, readers, flat_weights = [], {}, []
    for path, weight in zip(member_paths, weights):
        source = exported.resolve_export(path, "members:")
        meta = exported.read_meta(source)
        if meta.is_ensemble:
            if meta.prior_correction:
                raise FerTfError(f"{path}: carries a prior correction; ensemble uncorrected exports "
                                 "and give the ensemble --prior-tau instead")
            inner = sum(m.weight for m in meta.members)
            parts = [(m.replace(label_set=meta.label_set, path=f"{path}#member{k}"),
                      rebuild.PrefixReader(rebuild.weight_source(source), f"member{k}/"),
                      weight * m.weight / inner) for k, m in enumerate(meta.members)]
        else:
            parts = [(meta.replace(path=path), rebuild.weight_source(source), weight)]
        for member, reader, share in parts:
            readers[f"member{len(metas)}"] = reader
            metas.append(member)
            flat_weights.append(share)
    meta = with_prior(rebuild.with_tta(rebuild.ensemble_meta(metas, flat_weights), tta), prior)
    with atomic.atomic_directory(out) as tmp:
        os.rmdir(tmp)
        rebuild.write(meta, readers, tmp, storage_of(float16, int8))
    return out


def weights_size(export_dir):
    folder = os.path.join(export_dir, "variables")
    return sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))


def total_size(export_dir):
    return sum(os.path.getsize(os.path.join(root, f))
               for root, _, files in os.walk(export_dir) for f in files)
