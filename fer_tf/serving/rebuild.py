"""Rebuild an export's inference graph from its metadata and weights — the one helper behind
`fer-tf export` (float16, test-time views), `fer-tf ensemble` and the TFLite export.

Every rebuilt SavedModel has two signatures:
- `serving_default`: `image_bytes` (PNG/JPEG/BMP strings of any size, grey or colour), decoded
  by each member's own decode, exactly as in training;
- `faces`: `faces`, uint8 [N, H, W, C] at the export's `image_size` (what `predict` aligns), so
  a caller that already holds pixels skips encoding and decoding.
Both return `probabilities`, `classes` and `class_names`.

float16 storage: the weights are stored as float16 (half the size) and cast once, when the
SavedModel is loaded, into float32 local variables that the graph reads — not on every call.
int8 storage: kernels are stored as int8 with one float32 scale per output channel (symmetric,
a quarter of the size), the other weights as float16; dequantized once at load the same way.

Landmark exports (`task` landmarks) are rebuilt with three signatures instead:
- `serving_default`: `image_bytes` + a face `box` -> `points` in photo pixels (and
  `points_normalized` in the crop); `image_only:serving_default`: the whole photo as the box;
- `crops`: `crops`, uint8 [N, 128, 128, 3] square crops of the faces (faces/crops.py) ->
  `points_normalized`, [0, 1] across each crop: no encoding, a batch of faces in one call.

An ensemble is a weighted average of its members' probabilities; each member keeps its own
input size, channels, normalisation and test-time views, under the scope `memberK/`.

A prior correction (`prior_correction` in the metadata) is post-hoc logit adjustment (Menon et al.
2021, "Long-tail learning via logit adjustment"): the final probabilities are divided by the
training split's class frequencies raised to `tau` and renormalised, so rare classes (disgust,
fear) are no longer out-voted by the training set's imbalance. tau 0 is the plain model, tau 1
the balanced Bayes rule; tau is chosen on PublicTest (tools/prior_correction.py).
"""
import dataclasses
import os

import numpy as np
import tensorflow as tf

from fer_tf import models
from fer_tf.data import preprocess
from fer_tf.core.errors import FerTfError
from fer_tf.core import export_format
from fer_tf.serving import exported
from fer_tf.training import model_fn, tasks, warm_start
from fer_tf.training.config import RunSpec
from fer_tf.training import receivers
from fer_tf.core.export_format import INPUT_KEY

v1 = tf.compat.v1
FACES_KEY = FACES_SIGNATURE = export_format.FACES_SIGNATURE
CROPS_KEY = CROPS_SIGNATURE = export_format.CROPS_SIGNATURE


def members(meta):
    """[(scope, member meta, weight)]: one entry for a single model, K for an ensemble."""
    if meta.is_ensemble:
        return [(f"member{k}", m, m.weight) for k, m in enumerate(meta.members)]
    return [("", meta, 1.0)]


def _to_member(images, image_size):
    """Faces at the export's size -> a member's size and channels (float32 [0, 255])."""
    height, width, channels = image_size
    if images.shape[-1] == 3 and channels == 1:
        images = tf.image.rgb_to_grayscale(images)
    elif images.shape[-1] == 1 and channels == 3:
        images = tf.tile(images, [1, 1, 1, 3])
    if tuple(images.shape[1:3]) != (height, width):
        images = tf.image.resize(images, [height, width], method="bilinear", antialias=True)
    return images


def _probabilities(meta, member_images):
    """Weighted mean of the members' probabilities; member_images(k, member) -> its input."""
    total, weights, smiles = 0.0, 0.0, []
    for k, (scope, member, weight) in enumerate(members(meta)):
        kind = KINDS.get(tasks.of(models.get(member.model)).rebuild)
        if not (kind and kind.ensembles):
            raise FerTfError(f"{member.model}: only classifiers on the shared model_fn can be "
                             "rebuilt (not Keras or landmark models)")
        run = RunSpec(model=member.model, classes=tuple(meta.classes), image_size=member.image_size)
        with v1.variable_scope(scope or v1.get_variable_scope(), reuse=v1.AUTO_REUSE):
            out = model_fn.classifier_model_fn(run)({"image": member_images(k, member)}, None,
                                                    tf.estimator.ModeKeys.PREDICT,
                                                    member.hparams)
        total += weight * out.predictions["probabilities"]
        weights += weight
        if "smile" in out.predictions:
            smiles.append(out.predictions["smile"])
    smile = tf.add_n(smiles) / len(smiles) if smiles else None
    return corrected(meta, total / weights), smile


def corrected(meta, probabilities):
    """The probabilities with the export's prior correction applied (unchanged without one)."""
    correction = meta.prior_correction
    if not correction:
        return probabilities
    bias = prior_bias(correction["tau"], correction["train_prior"])
    # The floor only matters for a probability that underflowed to 0: it stays the smallest.
    logits = tf.math.log(tf.maximum(probabilities, 1e-30)) + tf.constant(bias, tf.float32)
    return tf.nn.softmax(logits, axis=-1)


def prior_bias(tau, train_per_class):
    """A prior correction's per-class offsets to log-probabilities: -tau * log(class frequency);
    `train_per_class`: counts or frequencies."""
    counts = np.asarray(train_per_class, np.float64)
    return -tau * np.log(counts / counts.sum())


def probabilities_from_faces(meta, images):
    """(probabilities, P(smile) or None) for float32 faces [N, H, W, C] in [0, 255] at the
    export's image_size."""
    return _probabilities(meta, lambda k, member: _to_member(images, member.image_size))


def _outputs(probabilities_and_smile, classes):
    probabilities, smile = probabilities_and_smile
    class_ids = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
    out = {"probabilities": probabilities, "classes": class_ids,
           "class_names": tf.gather(tf.constant(classes), class_ids)}
    if smile is not None:
        out["smile"] = smile
    return out


class Float16Storage:
    """A custom getter: float32 variables are stored as float16 and read from float32 local
    copies that `init_op` fills once, at load time."""

    def __init__(self):
        self.copies = {}

    def __call__(self, getter, name, *args, dtype=tf.float32, **kwargs):
        if dtype.base_dtype != tf.float32:
            return getter(name, *args, dtype=dtype, **kwargs)
        if name not in self.copies:
            stored = getter(name, *args, dtype=tf.float16, **kwargs)
            local = v1.Variable(tf.zeros(stored.shape, tf.float32), trainable=False,
                                collections=[v1.GraphKeys.LOCAL_VARIABLES],
                                name=f"{name}_float32")
            self.copies[name] = (stored, local)
        return self.copies[name][1]

    def init_op(self):
        return tf.group(*[local.assign(tf.cast(stored, tf.float32))
                          for stored, local in self.copies.values()], name="cast_weights_once")


class Int8Storage(Float16Storage):
    """Float16Storage, except kernels (rank >= 2): int8 plus a float32 scale per output channel
    (`NAME` and `NAME_scale`; `load_weights` quantizes)."""

    def __call__(self, getter, name, *args, dtype=tf.float32, **kwargs):
        shape = kwargs.get("shape")
        if dtype.base_dtype != tf.float32 or shape is None or len(shape) < 2:
            return super().__call__(getter, name, *args, dtype=dtype, **kwargs)
        if name not in self.copies:
            plain = {k: v for k, v in kwargs.items() if k not in ("initializer", "regularizer")}
            stored = getter(name, *args, dtype=tf.int8, initializer=v1.zeros_initializer(), **plain)
            scale = getter(name + warm_start.SCALE_SUFFIX, *args, dtype=tf.float32,
                           initializer=v1.ones_initializer(),
                           **{**plain, "shape": [shape[-1]], "trainable": False})
            local = v1.Variable(tf.zeros(stored.shape, tf.float32), trainable=False,
                                collections=[v1.GraphKeys.LOCAL_VARIABLES],
                                name=f"{name}_float32")
            self.copies[name] = (stored, local)
            self.scales[name] = scale
        return self.copies[name][1]

    def __init__(self):
        super().__init__()
        self.scales = {}

    def init_op(self):
        return tf.group(*[local.assign(tf.cast(stored, tf.float32) * self.scales[name]
                                       if name in self.scales else tf.cast(stored, tf.float32))
                          for name, (stored, local) in self.copies.items()],
                        name="dequantize_weights_once")


STORAGES = {"float32": None, "float16": Float16Storage, "int8": Int8Storage}


def build_graph(meta, storage="float32"):
    """-> (signature_def_map, init op or None) in the current graph."""
    classes = meta.classes
    storage = STORAGES[storage]() if STORAGES[storage] else None
    image_bytes = v1.placeholder(tf.string, [None], name=INPUT_KEY)
    faces = v1.placeholder(tf.uint8, [None, *meta.image_size], name=FACES_KEY)

    def decoded(k, member):
        height, width, channels = member.image_size
        return tf.map_fn(lambda b: preprocess.decode_image(b, height, width, channels),
                         image_bytes, fn_output_signature=tf.float32)

    with v1.variable_scope("", custom_getter=storage):
        from_bytes = _outputs(_probabilities(meta, decoded), classes)
        from_faces = _outputs(probabilities_from_faces(meta, tf.cast(faces, tf.float32)), classes)
    signatures = {
        tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY: v1.saved_model.predict_signature_def(
            {INPUT_KEY: image_bytes}, from_bytes),
        FACES_SIGNATURE: v1.saved_model.predict_signature_def({FACES_KEY: faces}, from_faces),
    }
    return signatures, (storage.init_op() if storage else None)


def build_landmark_graph(meta, storage="float32"):
    """-> (signature_def_map, init op or None) of a landmark export, in the current graph."""
    storage = STORAGES[storage]() if STORAGES[storage] else None
    size = meta.image_size[0]
    receiver = receivers.landmark_serving_input_receiver_fn(size)()
    crops = v1.placeholder(tf.uint8, [None, size, size, 3], name=CROPS_KEY)
    run = RunSpec.for_export(meta)
    network = model_fn.landmark_model_fn(run)
    predict = tf.estimator.ModeKeys.PREDICT
    # Two inputs, one set of weights: the second network call reuses the first one's variables.
    with v1.variable_scope("", custom_getter=storage), \
            v1.variable_scope(v1.get_variable_scope(), reuse=v1.AUTO_REUSE):
        from_bytes = network(receiver.features, None, predict, meta.hparams).predictions
        from_crops = network({"image": tf.cast(crops, tf.float32)}, None, predict,
                             meta.hparams).predictions
    image_bytes = receiver.receiver_tensors[INPUT_KEY]
    signatures = {
        tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY: v1.saved_model.predict_signature_def(
            receiver.receiver_tensors, from_bytes),
        export_format.IMAGE_ONLY_SIGNATURE: v1.saved_model.predict_signature_def(
            {INPUT_KEY: image_bytes}, from_bytes),
        CROPS_SIGNATURE: v1.saved_model.predict_signature_def(
            {CROPS_KEY: crops}, {"points_normalized": from_crops["points_normalized"]}),
    }
    return signatures, (storage.init_op() if storage else None)


@dataclasses.dataclass(frozen=True)
class ExportKind:
    """How a task's exports are rebuilt, loaded and served; a Task names its kind (Task.rebuild)
    and nothing else asks which task an export came from."""
    name: str
    graph: callable                 # (meta, storage) -> (signature_def_map, init op or None)
    client: type                    # loads it: (path, flag, optimize, signatures, precision)
    views: bool                     # --tta rebuilds test-time views into its graph
    prior: bool                     # has classes, so --prior-tau applies
    ensembles: bool                 # can be an ensemble member
    reduced_precision: bool         # may be served in bf16 (points in pixels: no)


CLASSIFIER = ExportKind("classifier", build_graph, exported.ExportedModel, views=True, prior=True,
                        ensembles=True, reduced_precision=True)
LANDMARKS = ExportKind("landmarks", build_landmark_graph, exported.LandmarkModel, views=False,
                       prior=False, ensembles=False, reduced_precision=False)
KINDS = {kind.name: kind for kind in (CLASSIFIER, LANDMARKS)}


def kind_of(meta):
    """The ExportKind an export is rebuilt as (an ensemble: its members'), or None for exports
    kept as they are (Keras models) and models this version does not know."""
    first = meta.singles[0].model
    if first not in models.names():
        return None
    return KINDS.get(tasks.of(models.get(first)).rebuild)


def weight_source(export_dir):
    return tf.train.load_checkpoint(os.path.join(export_dir, "variables", "variables"))


class PrefixReader:
    """An ensemble member's weights inside an ensemble export (`memberK/...`), read as a
    checkpoint of its own."""

    def __init__(self, reader, prefix):
        self.reader, self.prefix = reader, prefix

    def has_tensor(self, name):
        return self.reader.has_tensor(self.prefix + name)

    def get_tensor(self, name):
        return self.reader.get_tensor(self.prefix + name)


def quantize(weights):
    """float kernel -> (int8 values, float32 scale per output channel): symmetric, round to
    nearest, so the largest magnitude of each channel maps to 127."""
    axes = tuple(range(weights.ndim - 1))
    scale = np.abs(weights).max(axis=axes) / 127.0
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    return np.clip(np.round(weights / scale), -127, 127).astype(np.int8), scale


def load_weights(sess, readers):
    """Fill every global variable from its member's weights: `readers` maps a scope ('' for a
    single model) to a checkpoint reader whose names carry no scope. Sources of any storage
    (float32, float16, int8) are read as float and stored as the variable wants."""
    suffix = warm_start.SCALE_SUFFIX
    assigns, feeds = [], {}
    for var in v1.global_variables():
        name = var.op.name
        scope, _, rest = name.partition("/")
        if not (scope and scope in readers):
            scope, rest = "", name              # a single model: its first name part is a layer
        reader, key = readers[scope], rest
        quantized_scale = key.endswith(suffix) and var.dtype.base_dtype == tf.float32 and \
            not reader.has_tensor(key)
        base = key[:-len(suffix)] if quantized_scale else key
        if not reader.has_tensor(base):
            raise FerTfError(f"variable {base} is missing from the weights of "
                             f"{'member ' + scope if scope else 'the export'}; re-export it")
        value = warm_start.read_float(reader, base)
        if quantized_scale:
            value = quantize(value)[1]
        elif var.dtype.base_dtype == tf.int8:
            value = quantize(value)[0]
        # The value fed to the variable's initializer, as Variable.load does, but all the
        # variables in one session run (one run each took most of a small export's time).
        assigns.append(var.initializer)
        feeds[var.initializer.inputs[1]] = value.astype(var.dtype.base_dtype.as_numpy_dtype)
    sess.run(assigns, feeds)


def write(meta, readers, out_dir, storage="float32"):
    """Write the rebuilt SavedModel to `out_dir` (a fresh path) with fer-tf's assets;
    `storage`: float32, float16 or int8 weights (STORAGES)."""
    with tf.Graph().as_default():
        signatures, init_op = kind_of(meta).graph(meta, storage)
        with v1.Session() as sess:
            sess.run(v1.local_variables_initializer())
            load_weights(sess, readers)
            builder = v1.saved_model.Builder(out_dir)
            builder.add_meta_graph_and_variables(sess, [tf.saved_model.SERVING],
                                                 signature_def_map=signatures, main_op=init_op)
            builder.save()
    extra = os.path.join(out_dir, export_format.ASSETS_EXTRA)
    os.makedirs(extra, exist_ok=True)
    export_format.write_assets(extra, meta)


def with_tta(meta, tta):
    """The metadata of an export rebuilt with test-time views `tta` (every member)."""
    if not tta:
        return meta
    for member in meta.singles:
        if tta == "ten_crop" and not member.crop_size:
            raise FerTfError(f"--tta ten_crop: {member.model} was not trained on crops "
                             "(crop_size 0); use --tta flip")
    if meta.is_ensemble:
        return meta.replace(members=tuple(m.replace(hparams={**m.hparams, "tta": tta})
                                          for m in meta.members))
    return meta.replace(hparams={**meta.hparams, "tta": tta})


def with_prior_correction(meta, tau, train_per_class, source):
    """The metadata of an export rebuilt with a prior correction of strength `tau` against the
    class counts `train_per_class` (replacing any it had; tau 0 removes it)."""
    meta = meta.replace(prior_correction=None)
    if not tau:
        return meta
    counts = np.asarray(train_per_class, np.float64)
    if not (counts > 0).all():
        raise FerTfError(f"--prior-data {source}: needs a training count > 0 for each of the "
                         f"{len(counts)} classes (has {list(train_per_class)})")
    return meta.replace(prior_correction={"tau": float(tau),
                                          "train_prior": (counts / counts.sum()).tolist(),
                                          "source": source})


def ensemble_meta(member_metas, weights=None):
    """The metadata of an ensemble of single-model exports with one label set."""
    first = member_metas[0]
    for meta in member_metas:
        if meta.is_ensemble:
            raise FerTfError(f"{meta.path}: is an ensemble already; list its members instead")
        if meta.prior_correction:
            raise FerTfError(f"{meta.path}: carries a prior correction; ensemble the "
                             "uncorrected exports and give the ensemble --prior-tau instead")
        if meta.label_set != first.label_set:
            raise FerTfError(f"{meta.path}: label set {meta.labels.name} differs from "
                             f"{first.path}'s {first.labels.name}; an ensemble "
                             "averages one label set")
    weights = weights or [1.0] * len(member_metas)
    if len(weights) != len(member_metas) or any(not w > 0 for w in weights):
        raise FerTfError(f"--weights: give one positive weight per member ({len(member_metas)})")
    sizes = np.array([m.image_size for m in member_metas])
    return export_format.ExportMeta(
        model=exported.ENSEMBLE, label_set=first.label_set,
        image_size=tuple(int(v) for v in sizes.max(axis=0)), input=INPUT_KEY,
        members=tuple(export_format.ExportMeta(
            model=m.model, hparams=m.hparams, image_size=m.image_size, weight=float(w),
            source=m.source or os.path.basename(os.path.normpath(m.path)))
            for m, w in zip(member_metas, weights)))
