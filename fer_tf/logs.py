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


def setup(verbose=False, command_line=False):
    """`command_line`: the process is fer-tf's own, so Keras may go without pandas (a library
    user's process keeps Keras as it is)."""
    with without_module("pandas") if command_line else contextlib.nullcontext():
        import tensorflow as tf
        from tensorflow.python.util import deprecation

    deprecation._PRINT_DEPRECATION_WARNINGS = False
    warnings.filterwarnings("ignore", message=r".*is deprecated and will be removed")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    tf.get_logger().setLevel(logging.INFO if verbose else logging.ERROR)
    tf.autograph.set_verbosity(0)
