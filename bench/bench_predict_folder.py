"""`fer-tf predict FOLDER` as users run it, against the `fer` package's documented loop, both as
whole processes on the same photos, interleaved.

    pip download fer --no-deps -d /tmp/peer
    pip install --no-deps --target /tmp/peer/site /tmp/peer/fer-*.whl
    python bench/bench_predict_folder.py --peer-site /tmp/peer/site \
        --genki ../shared/data/genki4k.tar.gz [--runs 3] [--sizes 4000 400]

For each folder size (the first N GENKI-4K photos, one folder each):
  fer-tf: `fer-tf predict DIR --format jsonl --output OUT` with every per-face output that is on
          by default (the shipped default: expression and smile);
  fer-tf --no-smile: the same without the smile;
  fer:    a script that builds `FER()` once (Haar cascade + its int8 TFLite classifier) and calls
          `detect_emotions(cv2.imread(path))` for each file, writing one JSON line per photo.
The three run one after the other, in a rotating order, `--runs` times; the figures are medians
of wall seconds and of CPU seconds (user + system of the process and its children). Then the
cold start: one photo, whole process, alternated, median of `--cold-runs`. Then, in one process,
the Analyzer over the largest folder (model loaded first), for the in-process rate.
Ends by printing the ratios fer / fer-tf (above 1: fer-tf faster).
"""
import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import extract_genki  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FERTF = os.path.join(os.path.dirname(sys.executable), "fer-tf")
PEER_LOOP = """import glob, json, os, sys
import cv2
from fer.fer import FER
detector = FER()
with open(sys.argv[2], "w") as out:
    for path in sorted(glob.glob(os.path.join(sys.argv[1], "*"))):
        faces = detector.detect_emotions(cv2.imread(path))
        out.write(json.dumps({"path": path, "faces": [
            {"box": [int(v) for v in f["box"]], "emotions": f["emotions"]} for f in faces]}) + "\\n")
"""


def timed(command, env=None):
    """(wall seconds, CPU seconds of the child) of one whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def commands(folder, out_dir, peer_script, smile=True):
    fer_tf = [FERTF, "predict", folder, "--format", "jsonl", "--output",
              os.path.join(out_dir, "fer_tf.jsonl")] + ([] if smile else ["--no-smile"])
    peer = [sys.executable, peer_script, folder, os.path.join(out_dir, "peer.jsonl")]
    return fer_tf, peer


def count_lines(path):
    with open(path) as f:
        return sum(1 for _ in f)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer-site", required=True, help="folder the fer package is installed in")
    parser.add_argument("--genki", default=os.path.join(ROOT, "..", "shared", "data", "genki4k.tar.gz"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[4000, 400])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cold-runs", type=int, default=5)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="bench_folder_")
    peer_script = os.path.join(work, "peer_loop.py")
    with open(peer_script, "w") as f:
        f.write(PEER_LOOP)
    env = {**os.environ, "PYTHONPATH": args.peer_site, "TF_CPP_MIN_LOG_LEVEL": "3"}
    rows = []
    try:
        for size in args.sizes:
            folder = extract_genki(args.genki, os.path.join(work, f"photos{size}"), size)
            with_smile, peer = commands(folder, work, peer_script)
            no_smile, _ = commands(folder, work, peer_script, smile=False)
            runs = {"fer-tf predict (as shipped)": with_smile, "fer-tf predict --no-smile": no_smile,
                    "fer (FER().detect_emotions loop)": peer}
            figures = {name: [] for name in runs}
            for r in range(args.runs):
                names = list(runs)
                names = names[r % len(names):] + names[:r % len(names)]   # rotate the order
                for name in names:
                    figures[name].append(timed(runs[name], env))
            assert count_lines(os.path.join(work, "fer_tf.jsonl")) >= size
            assert count_lines(os.path.join(work, "peer.jsonl")) == size
            peer_wall = statistics.median(w for w, _ in figures["fer (FER().detect_emotions loop)"])
            for name, values in figures.items():
                wall = statistics.median(w for w, _ in values)
                cpu = statistics.median(c for _, c in values)
                rows.append((size, name, wall, cpu, peer_wall / wall))
                print(f"{size:5d} photos  {name:36s} wall {wall:7.2f} s  CPU {cpu:7.2f} s  "
                      f"{size / wall:6.1f} photos/s  fer/this {peer_wall / wall:.2f}x", flush=True)
        one = os.path.join(work, "one")
        extract_genki(args.genki, one, 1)
        photo = os.path.join(one, sorted(os.listdir(one))[0])
        cold = {"fer-tf predict one.jpg": [FERTF, "predict", photo],
                "fer one photo": [sys.executable, "-c", PEER_LOOP.replace(
                    'sorted(glob.glob(os.path.join(sys.argv[1], "*")))', "[sys.argv[1]]"),
                    photo, os.path.join(work, "cold.jsonl")]}
        walls = {name: [] for name in cold}
        for r in range(args.cold_runs):
            for name in (list(cold) if r % 2 == 0 else list(cold)[::-1]):
                walls[name].append(timed(cold[name], env)[0])
        medians = {name: statistics.median(v) for name, v in walls.items()}
        for name, value in medians.items():
            print(f"cold start, one photo  {name:24s} {value:.2f} s (median of {args.cold_runs})")
        print(f"cold start fer/fer-tf {medians['fer one photo'] / medians['fer-tf predict one.jpg']:.2f}x")
        sys.path.insert(0, ROOT)
        from fer_tf import Analyzer
        biggest = os.path.join(work, f"photos{max(args.sizes)}")
        paths = sorted(os.path.join(biggest, p) for p in os.listdir(biggest))
        analyzer = Analyzer(workers=2, landmarks=None)
        analyzer.analyze_many(paths[:20])
        start = time.perf_counter()
        results = analyzer.analyze_many(paths)
        seconds = time.perf_counter() - start
        print(f"in process (Analyzer(workers=2, landmarks=None), model loaded): {len(paths)} photos "
              f"in {seconds:.2f} s, {len(paths) / seconds:.1f} photos/s, "
              f"{sum(len(r.faces) for r in results)} faces, smile {'on' if analyzer.smile_from_model or analyzer.smile_model else 'off'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
