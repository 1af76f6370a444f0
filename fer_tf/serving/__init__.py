"""Serving: loading exports (exported), rebuilding their graphs (rebuild), standalone exports and
ensembles (export) and TensorFlow Lite (tflite)."""
