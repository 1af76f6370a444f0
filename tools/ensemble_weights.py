"""Choose ensemble member weights on PublicTest (the eval split) only.

Each member (an export or a model dir's best export, with whatever test-time views it was
exported with) scores the eval split once; every combination of whole-number weights 0..MAX per
member (at least two members non-zero) is scored by the weighted mean of the probabilities, and
the best few are printed — accuracy first, mean per-class accuracy as the tie-break. The test
split is never read. `--max-members N` keeps to sets of at most N members (the size budget).

A fine grid over many members can fit PublicTest's noise. `--split-half R` measures that, still
on PublicTest alone: R times, a seeded random half of it chooses by each rule — the grid, and
equal weights over the k members best on that half — and the other half scores the choice. The
rule with the best held-out mean is then applied to all of PublicTest.

    python tools/ensemble_weights.py models/vgg_fer2013 runs/vgg_fer2013_s1 models/default \
        --data records/fer2013 --max-weight 3 [--split-half 50]
Then: fer-tf ensemble MEMBERS... --weights W... --out models/NAME

Ends by printing the chosen weights and their PublicTest accuracy.
"""
import argparse
import itertools
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")      # no C++ start-up noise


def scores(probabilities, labels):
    from fer_tf.apps.evaluate import accuracy_scores
    return accuracy_scores(probabilities, labels)


def mixed(outputs, weights):
    return sum(w * p for w, p in zip(weights, outputs) if w) / sum(weights)


def grid(outputs, labels, max_weight, max_members=None):
    """[(accuracy, mean per class, weights)] of every whole-number weighting, best first."""
    results = []
    for weights in itertools.product(range(max_weight + 1), repeat=len(outputs)):
        used = sum(w > 0 for w in weights)
        if used < 2 or used > (max_members or used) or np.gcd.reduce(weights) != 1:
            continue
        results.append((*scores(mixed(outputs, weights), labels), weights))
    results.sort(key=lambda r: (-r[0], -r[1]))
    return results


def top_k_equal(outputs, labels, k):
    """Weight 1 on the k members most accurate on `labels` (ties: earlier member), 0 elsewhere."""
    accuracy = [scores(p, labels)[0] for p in outputs]
    chosen = sorted(range(len(outputs)), key=lambda i: (-accuracy[i], i))[:k]
    return tuple(int(i in chosen) for i in range(len(outputs)))


def rules(max_weight, max_members, count):
    """name -> chooser(outputs, labels) -> weights."""
    found = {"grid": lambda o, y: grid(o, y, max_weight, max_members)[0][2]}
    for k in range(2, min(count, max_members or count) + 1):
        found[f"top-{k} equal"] = lambda o, y, k=k: top_k_equal(o, y, k)
    return found


def split_half(outputs, labels, choosers, repeats, seed=0):
    """name -> (in-sample accuracies, held-out accuracies) over `repeats` random halves: each
    rule chooses weights on one half and is scored on the other."""
    rng = np.random.default_rng(seed)
    found = {name: ([], []) for name in choosers}
    for _ in range(repeats):
        order = rng.permutation(len(labels))
        chosen, held = order[:len(labels) // 2], order[len(labels) // 2:]
        on_chosen, on_held = [p[chosen] for p in outputs], [p[held] for p in outputs]
        for name, choose in choosers.items():
            weights = choose(on_chosen, labels[chosen])
            found[name][0].append(scores(mixed(on_chosen, weights), labels[chosen])[0])
            found[name][1].append(scores(mixed(on_held, weights), labels[held])[0])
    return found


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
    parser.add_argument("--split-half", type=int, default=0, metavar="R",
                        help="compare the selection rules on R random halves of PublicTest")
    args = parser.parse_args()
    if len(args.members) < 2 or (args.max_members is not None and args.max_members < 2):
        parser.error("an ensemble needs two members at least: give two or more, --max-members >= 2")
    from fer_tf.core import logs
    from fer_tf.apps.evaluate import split_probabilities
    logs.setup()
    outputs, labels = [], None
    for path in args.members:
        _, probabilities, labels = split_probabilities(path, args.data, args.split)
        outputs.append(probabilities)
        accuracy, mean_class = scores(probabilities, labels)
        print(f"{path}: PublicTest {accuracy:.4f} (mean per class {mean_class:.4f})", flush=True)
    results = grid(outputs, labels, args.max_weight, args.max_members)
    for accuracy, mean_class, weights in results[:args.top]:
        print(f"weights {' '.join(map(str, weights))}: PublicTest {accuracy:.4f} "
              f"(mean per class {mean_class:.4f})")
    rule = "grid"
    if args.split_half:
        choosers = rules(args.max_weight, args.max_members, len(outputs))
        found = split_half(outputs, labels, choosers, args.split_half)
        print(f"selection rules on {args.split_half} random halves of PublicTest "
              "(chosen on one half, scored on the other):")
        for name, (inside, held) in found.items():
            print(f"  {name}: held-out {np.mean(held):.4f} ± {np.std(held):.4f} "
                  f"(on the half it chose on {np.mean(inside):.4f})")
        rule = max(found, key=lambda name: (np.mean(found[name][1]), name == "grid"))
    # The grid's choice on all of PublicTest is already `results[0]`; other rules choose now.
    weights = results[0][2] if rule == "grid" else choosers[rule](outputs, labels)
    accuracy = scores(mixed(outputs, weights), labels)[0]
    print(f"best: --weights {' '.join(map(str, weights))} (PublicTest {accuracy:.4f}"
          + (f"; rule {rule})" if args.split_half else ")"))


if __name__ == "__main__":
    main()
