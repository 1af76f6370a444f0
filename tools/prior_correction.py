"""Choose the strength of an export's prior correction (post-hoc logit adjustment) on PublicTest.

The export scores the eval split once; its probabilities are then divided by the training split's
class frequencies raised to tau (tau = 0, 0.1, ..., 1: from the plain model to the balanced
Bayes rule), renormalised, and each tau's accuracy and mean per-class accuracy are printed. The
chosen tau maximises the criterion — by default the mean of the two, so neither the frequent
classes (accuracy) nor the rare ones (mean per class) are given up for the other. The test split
is never read.

    python tools/prior_correction.py models/default --data records/fer2013
Then: fer-tf export --model-dir models/default --prior-tau TAU --prior-data records/fer2013 \
          --int8 --out models/NAME

Ends by printing the chosen tau and its PublicTest figures.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")      # no C++ start-up noise

CRITERIA = {
    "balanced": lambda accuracy, mean_class: (accuracy + mean_class) / 2,
    "accuracy": lambda accuracy, mean_class: accuracy,
    "mean_per_class": lambda accuracy, mean_class: mean_class,
}


def corrected(probabilities, train_per_class, tau):
    """The exported graph's correction (fer_tf/serving/rebuild.py), in numpy."""
    from fer_tf.serving.rebuild import prior_bias
    adjusted = probabilities * np.exp(prior_bias(tau, train_per_class))
    return adjusted / adjusted.sum(axis=1, keepdims=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", help="an export or a model dir (best export), uncorrected")
    parser.add_argument("--data", required=True,
                        help="record folder: its train split gives the prior, its eval split scores")
    parser.add_argument("--criterion", default="balanced", choices=sorted(CRITERIA))
    parser.add_argument("--steps", type=int, default=10, help="tau grid: 0, 1/steps, ..., 1")
    args = parser.parse_args()
    from fer_tf.core import logs
    from fer_tf.data import records
    from fer_tf.apps.evaluate import accuracy_scores, split_probabilities
    logs.setup()
    model, probabilities, labels = split_probabilities(args.export, args.data, "eval")
    if model.meta.prior_correction:
        sys.exit(f"{args.export}: already carries a prior correction (tau "
                 f"{model.meta.prior_correction['tau']}); give the uncorrected export")
    counts = records.read_manifest(args.data).split_per_class("train")
    best = None
    for tau in np.linspace(0.0, 1.0, args.steps + 1):
        accuracy, mean_class = accuracy_scores(corrected(probabilities, counts, tau), labels)
        score = CRITERIA[args.criterion](accuracy, mean_class)
        print(f"tau {tau:.2f}: PublicTest accuracy {accuracy:.4f}, mean per class {mean_class:.4f}")
        if best is None or score > best[0] + 1e-12:
            best = (score, tau, accuracy, mean_class)
    _, tau, accuracy, mean_class = best
    print(f"best ({args.criterion}): --prior-tau {tau:.2f} (PublicTest accuracy {accuracy:.4f}, "
          f"mean per class {mean_class:.4f})")


if __name__ == "__main__":
    main()
