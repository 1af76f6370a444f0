"""Choose ensemble member weights on PublicTest (the eval split) only.

Each member (an export or a model dir's best export, with whatever test-time views it was
exported with) scores the eval split once; every combination of whole-number weights 0..MAX per
member (at least two members non-zero) is scored by the weighted mean of the probabilities, and
the best few are printed — accuracy first, mean per-class accuracy as the tie-break. The test
split is never read. `--max-members N` keeps to sets of at most N members (the size budget).

    python tools/ensemble_weights.py models/vgg_fer2013 runs/vgg_fer2013_s1 models/default \
        --data records/fer2013 --max-weight 3
Then: fer-tf ensemble MEMBERS... --weights W... --out models/NAME

Ends by printing the best weights and their PublicTest accuracy.
"""
import argparse
import itertools
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")      # no C++ start-up noise


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("members", nargs="+")
    parser.add_argument("--data", required=True, help="record folder (its eval split is used)")
    parser.add_argument("--split", default="eval", choices=("eval",),
                        help="only the selection split; the test split is for reporting once")
    parser.add_argument("--max-weight", type=int, default=3)
    parser.add_argument("--max-members", type=int,
                        help="at most this many non-zero weights (a size budget)")
    parser.add_argument("--top", type=int, default=5)
    args = parser.parse_args()
    from fer_tf import logs
    from fer_tf.evaluate import accuracy_scores as scores, split_probabilities
    logs.setup()
    outputs, labels = [], None
    for path in args.members:
        _, probabilities, labels = split_probabilities(path, args.data, args.split)
        outputs.append(probabilities)
        accuracy, mean_class = scores(probabilities, labels)
        print(f"{path}: PublicTest {accuracy:.4f} (mean per class {mean_class:.4f})", flush=True)
    results = []
    for weights in itertools.product(range(args.max_weight + 1), repeat=len(outputs)):
        used = sum(w > 0 for w in weights)
        if used < 2 or used > (args.max_members or used) or np.gcd.reduce(weights) != 1:
            continue
        mixed = sum(w * p for w, p in zip(weights, outputs)) / sum(weights)
        results.append((*scores(mixed, labels), weights))
    results.sort(key=lambda r: (-r[0], -r[1]))
    for accuracy, mean_class, weights in results[:args.top]:
        print(f"weights {' '.join(map(str, weights))}: PublicTest {accuracy:.4f} "
              f"(mean per class {mean_class:.4f})")
    best = results[0]
    print(f"best: --weights {' '.join(map(str, best[2]))} (PublicTest {best[0]:.4f})")


if __name__ == "__main__":
    main()
