"""Write tests/data/slow_tests.txt from a full run's durations: every test whose setup + call took
more than --threshold seconds (tests/conftest.py marks them `slow`; `make test-quick` skips them).

    .venv/bin/python -m pytest -q tests --durations=0 > /tmp/full.log
    python tools/slow_tests.py /tmp/full.log [--threshold 2]
"""
import argparse
import collections
import os
import re

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "data",
                   "slow_tests.txt")
LINE = re.compile(r"^([\d.]+)s (setup|call|teardown)\s+(\S+)$")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log")
    parser.add_argument("--threshold", type=float, default=2.0)
    args = parser.parse_args()
    seconds = collections.Counter()
    with open(args.log) as f:
        for line in f:
            match = LINE.match(line.strip())
            if match:
                seconds[match.group(3)] += float(match.group(1))
    slow = sorted(test for test, s in seconds.items() if s > args.threshold)
    with open(OUT, "w") as f:
        f.write(f"# tests over {args.threshold:g} s (setup + call) in a full run; tools/slow_tests.py\n")
        f.write("\n".join(slow) + "\n")
    print(f"{len(slow)} of {len(seconds)} timed tests over {args.threshold:g} s "
          f"({sum(seconds[t] for t in slow):.0f} of {sum(seconds.values()):.0f} s) -> {OUT}")


if __name__ == "__main__":
    main()
