"""Reading an export back: resolve a model dir to its best export, its fer-tf metadata, and a
loaded SavedModel to call (`ExportedModel` for classifiers, `LandmarkModel` for landmarks)."""
import os

import numpy as np
import tensorflow as tf
from tensorflow.python.util import deprecation
from google.protobuf.message import DecodeError
from tensorflow.core.protobuf import saved_model_pb2

from fer_tf.core import export_format
from fer_tf.core import labels as label_sets
from fer_tf.data.records import encode_png
from fer_tf.core.errors import FerTfError
from fer_tf.faces import crops
from fer_tf.core.outputs import best_export
from fer_tf.core.export_format import CROPS_SIGNATURE, FACES_SIGNATURE, INPUT_KEY, SERVING_DEFAULT


class Signatures:
    """A SavedModel in its own graph and session, called by signature name. Loaded as a v1
    graph, because `tf.saved_model.load` prunes every signature into a function first: three
    times slower to load (0.6-0.8 s against 0.2 s for `vgg`), and no faster per call.

    Only the nodes the signatures, the restore and the main op need are imported (see
    `serving_graph`): an export also holds every variable's initializer and saver, more than
    half its nodes, and Python's per-node bookkeeping is most of a graph's import time.

    `optimize=False` skips Grappler's graph rewriting, which runs on the first call of every
    new graph: 40 % faster to load and to make the first call, but about 10 % slower per
    call afterwards — for a process that classifies one photo and exits."""

    def __init__(self, path, flag="--model", optimize=True, precision="float32"):
        config = tf.compat.v1.ConfigProto()
        config.graph_options.rewrite_options.disable_meta_optimizer = not optimize
        if resolve_precision(precision) == "bf16":
            # oneDNN's bfloat16 auto-mixed-precision rewrite of the CPU graph: about twice the
            # faces/s on CPUs with AVX-512 BF16 / AMX; weights and outputs stay float32.
            rewrite = config.graph_options.rewrite_options
            rewrite.auto_mixed_precision_onednn_bfloat16 = rewrite.ON
        try:
            meta_graph = read_meta_graph(path)
            graph_def, init_ops = serving_graph(meta_graph)
            graph = tf.Graph()
            with graph.as_default():
                tf.compat.v1.import_graph_def(graph_def, name="")
            self.session = tf.compat.v1.Session(graph=graph, config=config)
            saver = meta_graph.saver_def
            if saver.restore_op_name:
                self.session.run(saver.restore_op_name, {saver.filename_tensor_name: os.path.join(
                    path, tf.saved_model.VARIABLES_DIRECTORY, tf.saved_model.VARIABLES_FILENAME)})
            for op in init_ops:
                self.session.run(op)
        except (OSError, ValueError, RuntimeError, DecodeError, tf.errors.OpError) as e:
            raise FerTfError(f"{flag} {path}: cannot load SavedModel ({type(e).__name__}); "
                             "re-export it") from None
        self.signatures = meta_graph.signature_def

    def __contains__(self, name):
        return name in self.signatures

    def __call__(self, name, **inputs):
        """-> {output name: numpy array}."""
        signature = self.signatures[name]
        return self.session.run({k: v.name for k, v in signature.outputs.items()},
                                {signature.inputs[k].name: v for k, v in inputs.items()})


PRECISIONS = ("auto", "float32", "bf16")


def cpu_has_bf16():
    """True on CPUs with native bfloat16 arithmetic (AVX-512 BF16 or AMX), read from the kernel's
    CPU flags; elsewhere bfloat16 would be emulated, slower than float32."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision):
    """auto -> bf16 where the CPU computes it natively, else float32."""
    if precision not in PRECISIONS:
        raise FerTfError(f"precision={precision!r}: use {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if cpu_has_bf16() else "float32"
    return precision


def read_meta_graph(path):
    """The serving MetaGraphDef of a SavedModel directory."""
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(path, tf.saved_model.SAVED_MODEL_FILENAME_PB), "rb") as f:
        saved_model.ParseFromString(f.read())
    for meta_graph in saved_model.meta_graphs:
        if tf.saved_model.SERVING in meta_graph.meta_info_def.tags:
            return meta_graph
    raise ValueError("no meta graph tagged 'serve'")


# The collections whose ops a v1 SavedModel runs after restoring its variables, by priority
# (fer-tf's exports dequantize their int8 weights in the main op).
INIT_COLLECTIONS = (tf.compat.v1.saved_model.MAIN_OP_KEY, tf.compat.v1.saved_model.LEGACY_INIT_OP_KEY)


def serving_graph(meta_graph):
    """(GraphDef cut to what serving runs, [init op names]): the signatures' inputs and
    outputs, the saver's restore op and the main (or legacy init) op, and what they need."""
    if meta_graph.asset_file_def:
        raise ValueError("SavedModels with asset files are not supported")
    init_ops = []
    for key in INIT_COLLECTIONS:
        if key in meta_graph.collection_def:
            init_ops = list(meta_graph.collection_def[key].node_list.value)
            break
    keep = [meta_graph.saver_def.restore_op_name, meta_graph.saver_def.filename_tensor_name]
    keep += init_ops
    for signature in meta_graph.signature_def.values():
        keep += [t.name for t in (*signature.inputs.values(), *signature.outputs.values())]
    names = {name.split(":")[0].lstrip("^") for name in keep if name}
    with deprecation.silence():        # a v1 API on purpose: exports are v1 graphs
        graph = tf.compat.v1.graph_util.extract_sub_graph(meta_graph.graph_def, sorted(names))
    return graph, init_ops


def is_saved_model(path):
    return os.path.isfile(os.path.join(path, tf.saved_model.SAVED_MODEL_FILENAME_PB))


# Names a user can give instead of a path (`--model accurate`): the most accurate FER2013 option.
ALIASES = {"accurate": "ensemble_fer2013"}


def shipped_model(name):
    """A model shipped with fer-tf (`default`, `smile`, `ensemble_fer2013`, `accurate` ...):
    $FER_TF_MODEL for `default`, else the package's own copy (the repository's `models/`
    folder, installed as the package data `fer_tf.shipped`)."""
    if name == "default" and os.environ.get("FER_TF_MODEL"):
        return os.environ["FER_TF_MODEL"]
    from importlib import resources
    name = ALIASES.get(name, name)
    try:
        path = str(resources.files("fer_tf.shipped").joinpath(name))
    except ModuleNotFoundError:
        path = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__)))), "models", name)
    if not is_saved_model(path):
        raise FerTfError(f"no shipped model {name!r} at {path}; pass a SavedModel path "
                         "(exported by fer-tf) instead")
    return path


def resolve_export(path, flag="--model"):
    """A SavedModel directory, a training model dir whose best export is used, or the name of
    a shipped model (`default`, `accurate`, `vgg_fer2013_50` ...) when no such path exists."""
    if not os.path.exists(path) and os.sep not in path and path not in (".", ".."):
        try:
            return shipped_model(path)
        except FerTfError:
            pass
    if not os.path.exists(path):
        raise FerTfError(f"{flag} {path}: no such directory; pass a SavedModel or a model dir")
    if is_saved_model(path):
        return path
    best = best_export(path)
    if not best:
        raise FerTfError(f"{flag} {path}: neither a SavedModel nor a model dir with an export "
                         "(export/best/*); train it first or point at an exported model")
    return best


ENSEMBLE = "ensemble"     # the `model` of an ensemble's metadata; its `members` list the models


def read_meta(export_dir):
    """The export's metadata (export_format.ExportMeta)."""
    return export_format.read_meta(export_dir)


class ExportedModel:
    """A loaded SavedModel: `predict(list of encoded images) -> probabilities (N, classes)`.
    `signatures`: the export already loaded (a server's, whose calls are batched), else it is
    loaded here."""

    def __init__(self, path, flag="--model", optimize=True, precision="float32", signatures=None):
        self.path = resolve_export(path, flag)
        self.meta = read_meta(self.path)
        self.label_set = self.meta.labels
        self.image_size = self.meta.image_size
        views = {m.tta for m in self.meta.singles}
        # An ensemble's members may each carry their own test-time views.
        self.tta = views.pop() if len(views) == 1 else "per_member"
        self.precision = resolve_precision(precision)
        self._signatures = signatures or Signatures(self.path, flag, optimize, self.precision)

    def predict(self, encoded_images):
        """Probabilities (N, classes) of encoded images (PNG/JPEG/BMP bytes, any size)."""
        out = self._signatures(SERVING_DEFAULT,
                               **{INPUT_KEY: np.array(list(encoded_images), dtype=object)})
        return self._sums_to_one(out["probabilities"])

    @property
    def has_smile(self):
        """True for an export that also gives P(smile) from its expression network (fer-tf
        smile-head), or from an ensemble member's."""
        return self.meta.has_smile_head

    def predict_faces(self, faces):
        """Probabilities of uint8 faces [N, H, W, C] at the export's image_size."""
        return self.predict_faces_and_smiles(faces)[0]

    def predict_faces_and_smiles(self, faces):
        """(probabilities, P(smile) [N] or None) of uint8 faces [N, H, W, C] at the export's
        image_size, from one call."""
        faces = np.asarray(faces, np.uint8)
        if FACES_SIGNATURE not in self._signatures:
            # Exports rebuilt by fer-tf take raw faces; older ones only image bytes. cv2's
            # encoder takes BGR; the faces are RGB (or grey).
            return self.predict([encode_png(f[:, :, ::-1] if f.shape[-1] == 3 else f)
                                 for f in faces]), None
        out = self._signatures(FACES_SIGNATURE, **{FACES_SIGNATURE: faces})
        return self._sums_to_one(out["probabilities"]), out.get("smile")

    def _sums_to_one(self, probabilities):
        """bf16 arithmetic leaves a softmax's sum up to ~1e-3 from 1: renormalised in float32."""
        if self.precision != "bf16":
            return probabilities
        probabilities = probabilities.astype(np.float32)
        return probabilities / probabilities.sum(axis=1, keepdims=True)


class LandmarkModel:
    """An exported landmark SavedModel: photo bytes + face box -> 68 points in photo pixels."""

    def __init__(self, path, flag="--model", optimize=True, signatures=None, precision="float32"):
        self.path = resolve_export(path, flag)
        meta = read_meta(self.path)
        if meta.labels.name != label_sets.LANDMARKS68.name:
            raise FerTfError(f"{flag} {path}: a {meta.model} model, not a landmark model")
        # `precision` is accepted like ExportedModel's; points are pixel coordinates: float32.
        self._signatures = signatures or Signatures(self.path, flag, optimize)
        self.image_size = meta.image_size

    def points(self, encoded, box):
        """Encoded photo bytes + one face box -> [68, 2] points in photo pixels."""
        out = self._signatures(SERVING_DEFAULT, image_bytes=np.array([encoded], dtype=object),
                               box=np.array([box], np.float32))
        return out["points"][0]

    def points_in(self, rgb, boxes):
        """A decoded RGB photo + face boxes -> [N, 68, 2] points in photo pixels, all faces in
        one call: the crops are cut here (exactly as the training records were) and fed to the
        `crops` signature; an export without it gets the photo encoded once instead."""
        boxes = list(boxes)
        if not boxes:
            return np.zeros((0, 68, 2), np.float32)
        if CROPS_SIGNATURE not in self._signatures:
            encoded = encode_png(rgb[:, :, ::-1])
            return np.stack([self.points(encoded, box) for box in boxes])
        windows = [crops.crop_window(box) for box in boxes]
        size = self.image_size[0]
        batch = np.stack([crops.crop_face(rgb, window, size) for window in windows])
        normalised = self._signatures(CROPS_SIGNATURE, crops=batch)["points_normalized"]
        return np.stack([crops.to_image_coords(p, w) for p, w in zip(normalised, windows)])
