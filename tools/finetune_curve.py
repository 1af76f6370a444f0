"""Own photos: training from scratch vs fine-tuning from the shipped FER2013 model, by how many
labelled photos you have. Uses GENKI-4K laid out as a user would lay out their own photos.

GENKI-4K's 4,000 photos become class folders (`smile/`, `no_smile/`); a seeded stratified 400
are held out as eval (checkpoint selection) and 400 as test (reported); from the other 3,200,
training sets of 100, 400 and all photos are drawn (stratified, nested). For each size a csv
(path,label,split) goes through `fer-tf records --dataset csv`, then the starting export's
architecture (`--init-from`, the default model by default) is trained twice with `fer-tf train` —
from scratch, and with `--init-from` — for the same number of steps and hyper-parameters, and
the best export (by eval accuracy) is scored on the test photos with `fer-tf eval`. A photo
without a detected face is counted as an error in the test accuracy, as in the smile goal.

    python tools/finetune_curve.py ../shared/data/genki4k.tar.gz --work runs/finetune_curve \
        --png docs/finetune_genki.png

Ends by printing the accuracy table (also written as JSON next to the PNG).
"""
import argparse
import csv
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")      # no C++ start-up noise
from fer_tf.data import genki4k  # noqa: E402

SIZES = (100, 400, "all")
HELD_OUT = 400                  # eval photos, and as many test photos


def fer_tf(*args):
    command = [os.path.join(os.path.dirname(sys.executable), "fer-tf"), *map(str, args)]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def lay_out_folders(archive, root):
    """GENKI-4K -> root/smile/*.jpg and root/no_smile/*.jpg; -> [(path, label)] in file order."""
    photos = []
    for photo in genki4k.read_photos(archive):
        label = "smile" if photo.smile else "no_smile"
        path = os.path.join(root, label, photo.name)
        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(photo.data)
        photos.append((path, label))
    return photos


def stratified_order(labels, seed):
    """Indices in a seeded order that keeps every prefix close to the class balance."""
    rng = np.random.RandomState(seed)
    by_class = [rng.permutation(np.flatnonzero(np.asarray(labels) == c)) for c in sorted(set(labels))]
    fraction = [len(m) / len(labels) for m in by_class]
    taken, order = [0] * len(by_class), []
    while len(order) < len(labels):
        k = max(range(len(by_class)), key=lambda c: fraction[c] * (len(order) + 1) - taken[c]
                if taken[c] < len(by_class[c]) else -1e9)
        order.append(int(by_class[k][taken[k]]))
        taken[k] += 1
    return order


def test_accuracy(report_text, photos_in_test):
    """fer-tf eval's accuracy over the detected test faces, rescaled to all test photos."""
    line = next(l for l in report_text.splitlines() if l.startswith("accuracy"))
    count = int(report_text.split(": ")[1].split()[0])
    return float(line.split()[-1]) * count / photos_in_test, count


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("genki", help="genki4k.tar.gz or its extracted folder")
    parser.add_argument("--work", default="runs/finetune_curve")
    parser.add_argument("--png", default="docs/finetune_genki.png")
    parser.add_argument("--steps", type=int, default=600, help="training steps per run")
    parser.add_argument("--detector", default="blazeface", choices=("blazeface", "dlib"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init-from", default="models/default",
                        help="the export to fine-tune from; its architecture is trained both ways")
    args = parser.parse_args()
    from fer_tf.serving import exported
    architecture = exported.read_meta(exported.resolve_export(args.init_from)).model

    photos = lay_out_folders(args.genki, os.path.join(args.work, "genki_folders"))
    order = stratified_order([label for _, label in photos], args.seed)
    eval_ids, test_ids, pool = order[:HELD_OUT], order[HELD_OUT:2 * HELD_OUT], order[2 * HELD_OUT:]
    results = {}
    for size in SIZES:
        train_ids = pool if size == "all" else pool[:size]
        name = f"n{len(train_ids)}"
        table = os.path.join(args.work, f"{name}.csv")
        with open(table, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["path", "label", "split"])
            for ids, split in ((train_ids, "train"), (eval_ids, "eval"), (test_ids, "test")):
                writer.writerows((os.path.abspath(photos[i][0]), photos[i][1], split) for i in ids)
        data = os.path.join(args.work, f"records_{name}")
        if not os.path.exists(os.path.join(data, "manifest.json")):
            fer_tf("records", table, "--dataset", "csv", "--out", data, "--classes",
                   "no_smile,smile", "--detector", args.detector, "--quiet")
        for start in ("scratch", "finetuned"):
            model_dir = os.path.join(args.work, f"{name}_{start}")
            extra = ["--init-from", args.init_from] if start == "finetuned" else []
            fer_tf("train", "--model", architecture, "--data", data, "--model-dir", model_dir,
                   "--max-steps", args.steps, "--checkpoint-steps", args.steps // 4,
                   "--hparams", "batch_size=32", *extra)
            report = fer_tf("eval", "--model", model_dir, "--data", data, "--split", "test",
                            "--confusion-png", os.path.join(model_dir, "confusion_test.png"))
            accuracy, faces = test_accuracy(report, HELD_OUT)
            results.setdefault(start, {})[len(train_ids)] = accuracy
            print(f"{len(train_ids):5d} photos, {start:9s}: test accuracy {accuracy:.4f} "
                  f"({faces} of {HELD_OUT} test photos with a face)", flush=True)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for start, marker in (("scratch", "o"), ("finetuned", "s")):
        sizes = sorted(results[start])
        ax.plot(sizes, [100 * results[start][n] for n in sizes], marker=marker,
                label={"scratch": f"{architecture} from scratch",
                       "finetuned": f"{architecture} --init-from {args.init_from}"}[start])
    ax.set_xscale("log")
    ax.set_xlabel("labelled training photos (GENKI-4K, smile / no smile)")
    ax.set_ylabel(f"test accuracy, % of {HELD_OUT} photos")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(args.png)), exist_ok=True)
    fig.savefig(args.png, dpi=110, metadata={"Software": "fer-tf"})
    with open(os.path.splitext(args.png)[0] + ".json", "w") as f:
        json.dump({"steps": args.steps, "detector": args.detector, "test_photos": HELD_OUT,
                   "model": architecture, "init_from": args.init_from, "accuracy": results},
                  f, indent=2)
    print("photos   scratch   fine-tuned")
    for n in sorted(results["scratch"]):
        print(f"{n:6d}   {100 * results['scratch'][n]:6.2f}%   {100 * results['finetuned'][n]:6.2f}%")


if __name__ == "__main__":
    main()
