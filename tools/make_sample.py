"""Cut the small FER2013 (+ FER+) sample that ships in tests/data from the full files.

Keeps the first N faces of every class in every Usage, in the original row order, and the FER+
vote rows at the same positions (so the sample joins by row position like the originals).

    python tools/make_sample.py ../shared/data/fer2013.csv.gz ../shared/data/fer2013new.csv tests/data
"""
import csv
import gzip
import os
import sys

PER_CLASS = {"Training": 30, "PublicTest": 7, "PrivateTest": 7}


def main(fer_path, ferplus_path, out_dir):
    taken = {}
    with gzip.open(fer_path, "rt", newline="") as f, open(ferplus_path, newline="") as g:
        fer, ferplus = csv.reader(f), csv.reader(g)
        header, plus_header = next(fer), next(ferplus)
        rows, plus_rows = [], []
        for row, plus in zip(fer, ferplus):
            key = (row[2], row[0])
            if taken.get(key, 0) < PER_CLASS[row[2]]:
                taken[key] = taken.get(key, 0) + 1
                rows.append(row)
                plus_rows.append(plus)
    os.makedirs(out_dir, exist_ok=True)
    # mtime=0 keeps the gzip bytes reproducible.
    with open(os.path.join(out_dir, "fer2013_sample.csv.gz"), "wb") as raw, \
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        text = "\n".join(",".join(r) for r in [header] + rows) + "\n"
        gz.write(text.encode())
    with open(os.path.join(out_dir, "fer2013new_sample.csv"), "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([plus_header] + plus_rows)
    print(f"{len(rows)} rows written to {out_dir}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
