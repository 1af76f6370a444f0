"""Training: tasks (what a model learns and every part of it), the typed run plumbing (config),
the one input pipeline (inputs), the one model_fn skeleton (model_fn), the serving receivers the
Estimator exports with (receivers), the run loop (run), progress and eval history (progress),
Keras models through model_to_estimator (keras_estimator) and the VGGFace2 bottleneck cache."""
