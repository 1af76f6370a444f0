"""What a training run shows and remembers between evaluations.

- `ProgressBar`: one tqdm bar over the whole run (steps, images/s, ETA, last loss), kept across
  train_and_evaluate's rounds, instead of TensorFlow's INFO lines.
- `EvalReporter`: an Exporter that sees every evaluation: prints one line (accuracy, mean
  per-class accuracy, best so far) and appends it to MODEL_DIR/eval_history.json.
- `PlateauHook`: the learning-rate drop on plateau the Estimator has no callback for. The
  schedule is a pure function of eval_history.json (`plateau_drops`), so a resumed run continues
  with the same rate; the hook feeds the scale into the graph's `lr_plateau_scale` placeholder.
"""
import json
import os
import time

import tensorflow as tf
from tqdm import tqdm

from fer_tf.core import atomic

v1 = tf.compat.v1
HISTORY = "eval_history.json"
LR_SCALE = "lr_plateau_scale"


def read_history(model_dir):
    try:
        with open(os.path.join(model_dir, HISTORY)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return []


def plateau_drops(history, patience, metric="accuracy", higher=True):
    """How many times the rate has dropped: once for every `patience` evaluations in a row
    without a new best of `metric` (the count restarts after each drop)."""
    best, stale, drops = None, 0, 0
    for entry in history:
        value = entry[metric]
        if best is None or (value > best if higher else value < best):
            best, stale = value, 0
            continue
        stale += 1
        if stale >= patience:
            drops, stale = drops + 1, 0
    return drops


class ProgressBar(v1.train.SessionRunHook):
    def __init__(self, max_steps, batch_size):
        self.max_steps, self.batch_size = max_steps, batch_size
        self.bar = None
        self.step = 0
        self.last_post = 0.0

    def begin(self):
        self.global_step = v1.train.get_global_step()
        graph = v1.get_default_graph()
        try:
            self.loss = graph.get_tensor_by_name("total_loss:0")
        except KeyError:
            self.loss = None

    def after_create_session(self, session, coord):
        self.step = int(session.run(self.global_step))
        if self.bar is None:
            self.bar = tqdm(total=self.max_steps, initial=self.step, unit=" steps",
                            dynamic_ncols=True, desc="training", mininterval=1.0)

    def before_run(self, run_context):
        fetches = {"step": self.global_step}
        if self.loss is not None:
            fetches["loss"] = self.loss
        return v1.train.SessionRunArgs(fetches)

    def after_run(self, run_context, run_values):
        step = int(run_values.results["step"]) + 1
        self.bar.update(max(0, step - self.step))
        self.step = step
        now = time.time()
        if now - self.last_post > 1.0:
            rate = self.bar.format_dict.get("rate") or 0.0
            loss = run_values.results.get("loss")
            self.bar.set_postfix_str(f"{rate * self.batch_size:.0f} img/s"
                                     + (f", loss {loss:.3f}" if loss is not None else ""),
                                     refresh=False)
            self.last_post = now

    def write(self, line):
        (self.bar.write if self.bar is not None else print)(line)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class EvalReporter(tf.estimator.Exporter):
    """Prints one line per evaluation and keeps the history (it exports nothing)."""

    def __init__(self, model_dir, steps_per_epoch, metric="accuracy", higher=True, write=print):
        self.model_dir, self.steps_per_epoch, self.write = model_dir, steps_per_epoch, write
        self.metric, self.higher = metric, higher

    @property
    def name(self):
        return "eval_report"

    def export(self, estimator, export_path, checkpoint_path, eval_result, is_the_final_export):
        key, higher = self.metric, self.higher
        entry = {"step": int(eval_result["global_step"]),
                 **{k: float(v) for k, v in eval_result.items()
                    if k in ("accuracy", "mean_per_class_accuracy", "nme", "failure_rate_8",
                             "loss")}}
        history = [h for h in read_history(self.model_dir) if h["step"] != entry["step"]]
        history.append(entry)
        atomic.write_json(os.path.join(self.model_dir, HISTORY), history)
        best = (max if higher else min)(history, key=lambda h: h[key])
        epoch = entry["step"] / self.steps_per_epoch
        shown = f"{key} {entry[key]:.4f}"
        if "mean_per_class_accuracy" in entry:
            shown += f", mean per-class {entry['mean_per_class_accuracy']:.4f}"
        self.write(f"epoch {epoch:.1f} (step {entry['step']}): eval {shown}; best {best[key]:.4f} "
                   f"(step {best['step']})")
        return None


class PlateauHook(v1.train.SessionRunHook):
    """Feeds factor ** plateau_drops(eval history) into the learning rate at every step."""

    def __init__(self, model_dir, patience, factor, metric="accuracy", higher=True):
        self.model_dir, self.patience, self.factor = model_dir, patience, factor
        self.metric, self.higher = metric, higher
        self.scale = 1.0

    def begin(self):
        self.placeholder = v1.get_default_graph().get_tensor_by_name(f"{LR_SCALE}:0")

    def after_create_session(self, session, coord):
        drops = plateau_drops(read_history(self.model_dir), self.patience, self.metric,
                              self.higher)
        self.scale = self.factor ** drops

    def before_run(self, run_context):
        return v1.train.SessionRunArgs(None, feed_dict={self.placeholder: self.scale})
