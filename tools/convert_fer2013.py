"""Convert Kaggle's fer2013.csv (optionally with FER+ votes) to fer-tf TFRecords.

The same as `fer-tf records`; runnable on its own from a checkout:
    python tools/convert_fer2013.py ../shared/data/fer2013.csv.gz --out records/fer2013
    python tools/convert_fer2013.py ../shared/data/fer2013.csv.gz --ferplus ../shared/data/fer2013new.csv --out records/ferplus
    python tools/convert_fer2013.py ../shared/data/fer2013.csv.gz --size 224 --out records/fer2013_224
Ends by printing the split counts it wrote.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from fer_tf.apps import cli  # noqa: E402

if __name__ == "__main__":
    sys.exit(cli.main(["records", *sys.argv[1:]]))
