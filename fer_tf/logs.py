"""Quiet TensorFlow's start-up and deprecation chatter; keep the Estimator's progress lines."""
import logging
import warnings


def setup(verbose=False):
    import tensorflow as tf
    from tensorflow.python.util import deprecation

    deprecation._PRINT_DEPRECATION_WARNINGS = False
    warnings.filterwarnings("ignore", message=r".*is deprecated and will be removed")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    tf.get_logger().setLevel(logging.INFO if verbose else logging.ERROR)
    tf.autograph.set_verbosity(0)
