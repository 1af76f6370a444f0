"""fer-tf: facial-expression recognition as a TensorFlow 1.x-style (tf.estimator) port on TF 2.15."""

__version__ = "0.1.0"
