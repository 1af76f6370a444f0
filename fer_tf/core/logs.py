"""Quiet TensorFlow's start-up and deprecation chatter; keep the Estimator's progress lines."""
import contextlib
import logging
import sys
import warnings


@contextlib.contextmanager
def without_module(name):
    """Make `import NAME` fail inside the block (unless it is already imported), and work again
    after it. TensorFlow 2.15 imports Keras eagerly, and Keras imports pandas (0.3 s of a 2.7 s
    cold start) only to accept DataFrames in `fit`, which fer-tf never calls; fer-tf's own uses
    of pandas import it later, normally."""
    if name in sys.modules:
        yield
        return
    sys.modules[name] = None
    try:
        yield
    finally:
        if sys.modules.get(name, "") is None:
            del sys.modules[name]


@contextlib.contextmanager
def stdlib_distutils():
    """TensorFlow imports `distutils` at start-up. In a venv, setuptools' start-up hook answers
    that import with its own copy, importing setuptools and pkg_resources on the way: 0.1 s of
    a 2 s cold start, against 2 ms for Python's own distutils (up to 3.11). Inside the block
    the hook (setuptools' `_distutils_hack`) stands aside; it is put back after it."""
    hack = sys.modules.get("_distutils_hack")
    finder = getattr(hack, "DISTUTILS_FINDER", None)
    if sys.version_info >= (3, 12) or "distutils" in sys.modules or finder not in sys.meta_path:
        yield
        return
    hack.remove_shim()
    try:
        yield
    finally:
        hack.add_shim()


def setup(verbose=False, command_line=False):
    """`command_line`: the process is fer-tf's own, so Keras may go without pandas and
    TensorFlow may use Python's distutils (a library user's process keeps both as they are)."""
    with without_module("pandas") if command_line else contextlib.nullcontext(), \
            stdlib_distutils() if command_line else contextlib.nullcontext():
        import tensorflow as tf
        from tensorflow.python.util import deprecation

    deprecation._PRINT_DEPRECATION_WARNINGS = False
    warnings.filterwarnings("ignore", message=r".*is deprecated and will be removed")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    # tf.data's note that a seeded run's augmentation map sees the graph seed: intended here.
    warnings.filterwarnings("ignore", message=r"Seed \d+ from outer graph might be getting used")
    tf.get_logger().setLevel(logging.INFO if verbose else logging.ERROR)
    tf.autograph.set_verbosity(0)
