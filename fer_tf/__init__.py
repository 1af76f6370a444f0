"""fer-tf: facial-expression recognition as a TensorFlow 1.x-style (tf.estimator) port on TF 2.15.

The Python API (TensorFlow loads on first use, not on import):

    import fer_tf
    analyzer = fer_tf.Analyzer()                 # shipped expression + smile models
    for face in analyzer.analyze("photo.jpg").faces:
        print(face.box, face.label, face.smile)
"""

__version__ = "0.1.0"
__all__ = ["Analyzer", "Face", "Result", "Results"]


def __getattr__(name):
    if name in __all__:
        import os
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")      # no C++ start-up noise
        from fer_tf.apps import analyzer
        from fer_tf.core import logs
        logs.setup()
        return getattr(analyzer, name)
    raise AttributeError(f"module 'fer_tf' has no attribute {name!r}")
