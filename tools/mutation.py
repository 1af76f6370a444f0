"""Mutation testing of the core modules with cosmic-ray (`make mutation`).

Each module is mutated (comparisons, operators, constants, booleans, exception types, `break` for
`continue` ...) one mutant at a time, and the tests that cover it are run against every mutant:
a mutant the tests still pass is a survivor. cosmic-ray edits the files it mutates, so every run
happens in a scratch copy of the repository's tracked files, never in the working tree.

    python tools/mutation.py [--modules fer_tf/core/outputs.py ...] [--json mutation.json]

Prints, per module: mutants, killed, survived, and the surviving mutants as diffs; the score and
the survivors' verdicts (equivalent, or why accepted) are recorded in docs/testing.md.
"""
import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# module -> the tests that cover it (fast, in process); each is run per mutant.
MODULES = {
    "fer_tf/core/outputs.py": "tests/test_outputs.py",
    "fer_tf/faces/crops.py": "tests/test_crops.py",
    "fer_tf/data/fer2013.py": "tests/test_fer2013.py",
    "fer_tf/data/photos.py": "tests/test_photos.py",
    "fer_tf/apps/heads.py": "tests/test_predict_formats.py",
    "fer_tf/training/inputs.py": "tests/test_inputs.py",
    "fer_tf/core/export_format.py": "tests/test_formats.py",
    "fer_tf/data/records.py": "tests/test_records.py",
    "fer_tf/apps/predict.py": "tests/test_predict_formats.py tests/test_predict_run.py",
    "fer_tf/apps/evaluate.py": "tests/test_evaluate.py",
    "fer_tf/apps/analyzer.py": "tests/test_engine.py tests/test_predict_formats.py",
    "fer_tf/serving/rebuild.py": "tests/test_rebuild_graph.py",
    "fer_tf/serving/export.py": "tests/test_rebuild_graph.py",
}

CONFIG = """[cosmic-ray]
module-path = "{module}"
timeout = 120.0
excluded-modules = []
test-command = "{python} -m pytest -x -q -p no:cacheprovider -o addopts= {tests}"

[cosmic-ray.distributor]
name = "local"
"""


def scratch_copy():
    folder = tempfile.mkdtemp(prefix="fer_tf_mutation_")
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        source = os.path.join(ROOT, name)
        if os.path.isfile(source):
            target = os.path.join(folder, name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy2(source, target)
    return folder


def run_module(folder, module, tests, rerun=None, resume=False):
    name = module.replace("/", "_")
    config = os.path.join(folder, f"{name}.toml")
    session = os.path.join(folder, f"{name}.sqlite")
    with open(config, "w") as f:
        f.write(CONFIG.format(module=module, python=sys.executable, tests=tests))
    binary = os.path.join(os.path.dirname(sys.executable), "cosmic-ray")
    if rerun:
        # The same mutants (the module's code must be unchanged); survivors become pending.
        shutil.copy(rerun, session)
        if not resume:
            with sqlite3.connect(session) as db:
                db.execute("DELETE FROM work_results WHERE test_outcome != 'KILLED'")
    else:
        subprocess.run([binary, "init", config, session], cwd=folder, check=True)
    start = time.perf_counter()
    subprocess.run([binary, "exec", config, session], cwd=folder, check=True)
    seconds = time.perf_counter() - start
    with sqlite3.connect(session) as db:
        rows = db.execute("SELECT test_outcome, diff FROM work_results").fetchall()
    outcomes = [(str(outcome).lower(), diff) for outcome, diff in rows]
    killed = sum(outcome == "killed" for outcome, _ in outcomes)
    survivors = [diff for outcome, diff in outcomes if outcome == "survived"]
    incompetent = sum(outcome == "incompetent" for outcome, _ in outcomes)
    return {"module": module, "tests": tests, "mutants": len(rows), "killed": killed,
            "survived": len(survivors), "incompetent": incompetent, "seconds": round(seconds),
            "survivors": survivors}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", nargs="*", default=list(MODULES))
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--rerun", metavar="SESSION", help="a finished (or interrupted) run's "
                        "cosmic-ray session of one module: run its survivors and unfinished "
                        "mutants again against today's tests, keep its killed ones")
    parser.add_argument("--resume", action="store_true", help="with --rerun: run only the "
                        "unfinished mutants, keep its survivors as they are (the tests unchanged)")
    args = parser.parse_args()
    if args.resume and not args.rerun:
        parser.error("--resume continues a session: give it with --rerun SESSION")
    folder = scratch_copy()
    results = []
    try:
        for module in args.modules:
            result = run_module(folder, module, MODULES[module], args.rerun, args.resume)
            results.append(result)
            print(f"{module}: {result['mutants']} mutants, {result['killed']} killed, "
                  f"{result['survived']} survived ({result['seconds']} s)", flush=True)
            for diff in result["survivors"]:
                print("    survivor:", " | ".join(line for line in diff.splitlines()
                                                if line.startswith(("+ ", "- ", "+\t", "-\t"))
                                                or (line[:1] in "+-" and not line.startswith(("+++", "---")))))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
