"""The models a server serves, found and loaded the way TF Serving finds them.

`--models DIR` is read as TF Serving's model base paths: DIR/NAME/VERSION/saved_model.pb (VERSION
a whole number; the newest version is served, TF Serving's default policy). fer-tf's own layouts
are read too: DIR/NAME/saved_model.pb (the shipped models; version 1), a training model dir
(NAME/export/best/TIMESTAMP, the timestamp is the version), and DIR itself being one SavedModel
or one base path. Any SavedModel is served over TF Serving's API; those exported by fer-tf (they
carry its metadata) also answer `/v1/analyze`.
"""
import dataclasses
import os

import numpy as np

from fer_tf.apps.serve import tfs_json
from fer_tf.apps.serve.batching import Batcher
from fer_tf.apps.serve.errors import ApiError
from fer_tf.core.errors import FerTfError
from fer_tf.core.outputs import best_export
from fer_tf.serving import exported, rebuild


def _versions(path):
    """{version: SavedModel dir} of one model path, or {} if it is not one."""
    if exported.is_saved_model(path):
        return {1: path}
    found = {int(name): os.path.join(path, name) for name in os.listdir(path)
             if name.isdigit() and exported.is_saved_model(os.path.join(path, name))}
    if not found and best_export(path):
        best = best_export(path)
        found = {int(os.path.basename(best)) if os.path.basename(best).isdigit() else 1: best}
    return found


def discover(root):
    """{name: (version, SavedModel dir)} under `root` (see the module doc)."""
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise FerTfError(f"--models {root}: no such directory")
    own = _versions(root)
    if own:
        version = max(own)
        return {os.path.basename(root.rstrip(os.sep)): (version, own[version])}
    models = {}
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name)
        if name.startswith((".", "_")) or not os.path.isdir(path):
            continue
        versions = _versions(path)
        if versions:
            version = max(versions)
            models[name] = (version, versions[version])
    if not models:
        raise FerTfError(f"--models {root}: no SavedModel found (give a folder of models laid out "
                         "as NAME/VERSION/saved_model.pb or NAME/saved_model.pb)")
    return models


class BatchedSignatures:
    """`exported.Signatures` with each signature's calls merged across concurrent callers by a
    Batcher (or run directly when batching is off): the REST and gRPC `:predict`, and the
    Analyzers behind `/v1/analyze`, all call the model through this."""

    def __init__(self, signatures, batching):
        self.plain, self.batching = signatures, batching
        self.signatures = signatures.signatures
        self.batchers = {}

    def __contains__(self, name):
        return name in self.plain

    def __call__(self, name, **inputs):
        if not self.batching:
            return self.plain(name, **inputs)
        batcher = self.batchers.get(name)
        if batcher is None:
            batcher = self.batchers.setdefault(name, Batcher(
                lambda merged, name=name: self.plain(name, **merged), self.batching.max_batch_size,
                self.batching.max_wait, name=f"batcher:{name}",
                allowed_sizes=self.batching.allowed_sizes))
        return batcher(inputs)

    def warm_up(self):
        """Run every numeric signature once at each allowed batch size (zeros), so the first
        requests do not pay for graph optimisation and kernel builds."""
        if not self.batching:
            return
        for name, signature in self.signatures.items():
            shapes = {}
            for key, info in signature.inputs.items():
                dims = [d.size for d in info.tensor_shape.dim]
                dtype = tfs_json.NUMPY_TYPES.get(info.dtype)
                if info.tensor_shape.unknown_rank or not dims or -1 in dims[1:] or dtype in (None, object):
                    break
                shapes[key] = (dims[1:], dtype)
            else:
                for size in self.batching.allowed_sizes:
                    self.plain(name, **{key: np.zeros([size, *dims], dtype)
                                        for key, (dims, dtype) in shapes.items()})

    def close(self):
        for batcher in self.batchers.values():
            batcher.close()


@dataclasses.dataclass
class BatchingOptions:
    max_batch_size: int = 64
    max_wait: float = 0.002

    @property
    def allowed_sizes(self):
        """Powers of two up to max_batch_size, and max_batch_size itself."""
        sizes = [2 ** i for i in range(13) if 2 ** i < self.max_batch_size]
        return sizes + [self.max_batch_size]


@dataclasses.dataclass
class Servable:
    """One loaded model version: its signatures (batched) and fer-tf metadata (None for a
    SavedModel fer-tf did not export)."""
    name: str
    version: int
    path: str
    signatures: BatchedSignatures
    meta: dict = None
    precision: str = "float32"

    def signature(self, name):
        name = name or exported.SERVING_DEFAULT
        if name not in self.signatures.signatures:
            raise ApiError(400, f"Serving signature name: \"{name}\" not found in signature def "
                                f"of model {self.name} (it has: "
                                f"{', '.join(sorted(self.signatures.signatures))})")
        return name, self.signatures.signatures[name]

    @property
    def kind(self):
        """Its rebuild.ExportKind; None for a SavedModel fer-tf did not export (or rebuild)."""
        return kind_of(self.meta)

    def model(self):
        """The export's client (ExportedModel, LandmarkModel) over the batched signatures."""
        return self.kind.client(self.path, signatures=self.signatures, precision=self.precision)


def kind_of(meta):
    return None if meta is None else rebuild.kind_of(meta)


class Repository:
    """The served models by name; `get(name, version)` raises the 404 TF Serving gives."""

    def __init__(self, root, precision="auto", batching=None):
        self.servables = {}
        for name, (version, path) in discover(root).items():
            try:
                meta = exported.read_meta(path)
            except FerTfError:
                meta = None
            # Landmark models stay float32: their points are pixel coordinates.
            kind = kind_of(meta)
            precision_here = exported.resolve_precision(
                precision if kind is None or kind.reduced_precision else "float32")
            plain = exported.Signatures(path, f"--models {name}", True, precision_here)
            signatures = BatchedSignatures(plain, batching)
            signatures.warm_up()
            self.servables[name] = Servable(name, version, path, signatures, meta, precision_here)

    def get(self, name, version=None):
        servable = self.servables.get(name)
        if servable is None:
            raise ApiError(404, f"Servable not found for request: Latest({name}); this server "
                                f"has: {', '.join(sorted(self.servables))}")
        if version is not None and int(version) != servable.version:
            raise ApiError(404, f"Servable not found for request: Specific({name}, {version}); "
                                f"version {servable.version} is served")
        return servable

    def close(self):
        for servable in self.servables.values():
            servable.signatures.close()
