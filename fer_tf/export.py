"""Copy a training run's best SavedModel into a standalone folder (atomically)."""
import os
import shutil

from fer_tf import atomic, serving
from fer_tf.errors import FerTfError


def export(model_dir, out):
    source = serving.resolve_export(model_dir)
    serving.read_meta(source)       # refuse exports that carry no label set
    if os.path.abspath(out).startswith(os.path.abspath(source)):
        raise FerTfError(f"--out {out}: must not be inside the export being copied")
    with atomic.atomic_directory(out) as tmp:
        for entry in os.listdir(source):
            src = os.path.join(source, entry)
            (shutil.copytree if os.path.isdir(src) else shutil.copy2)(src, os.path.join(tmp, entry))
    return out
