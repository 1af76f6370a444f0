"""The package's shape: imports point only down the layers of docs/ARCHITECTURE.md, and the
code has no unused imports or undefined names (pyflakes)."""
import ast
import os
import subprocess
import sys

import pytest

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fer_tf")
LAYERS = {"core": 0, "faces": 1, "data": 2, "models": 3, "training": 4, "serving": 5, "apps": 6}
CORE = {"errors", "atomic", "outputs", "hparams", "labels", "logs"}


def layer_of(module):
    """fer_tf.x.y -> its layer; None for the package itself."""
    parts = module.split(".")[1:]
    if not parts or parts[0] == "__init__":
        return None
    if parts[0] in CORE:
        return LAYERS["core"]
    return LAYERS.get(parts[0], LAYERS["apps"])


def imports_of(path):
    tree = ast.parse(open(path).read())
    for node in ast.walk(tree):             # function-level imports count too
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fer_tf"):
            for alias in node.names:
                yield f"{node.module}.{alias.name}" if node.module == "fer_tf" else node.module
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("fer_tf"))


def modules():
    for root, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(root, name)
                rel = os.path.relpath(path, os.path.dirname(PACKAGE))[:-3].replace(os.sep, ".")
                yield rel, path


@pytest.mark.parametrize("module,path", sorted(modules()))
def test_imports_point_down(module, path):
    own = layer_of(module)
    if own is None:
        return
    upward = [m for m in imports_of(path) if (layer_of(m) or 0) > own]
    assert not upward, f"{module} (layer {own}) imports from above: {upward}"


def test_pyflakes_is_clean():
    result = subprocess.run([sys.executable, "-m", "pyflakes", PACKAGE], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr
