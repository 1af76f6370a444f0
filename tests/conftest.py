"""Shared fixtures: the bundled FER2013 sample, tiny synthetic csvs, and converted records."""
import gzip
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DATA = os.path.join(os.path.dirname(__file__), "data")
SAMPLE_CSV = os.path.join(DATA, "fer2013_sample.csv.gz")
SAMPLE_FERPLUS = os.path.join(DATA, "fer2013new_sample.csv")
FACE_PNG = os.path.join(DATA, "face_happy.png")
TWO_FACES = os.path.join(DATA, "two_faces.jpg")     # GENKI-4K file0001 (smile) + file2500 side by side


SLOW_TESTS = os.path.join(DATA, "slow_tests.txt")     # tools/slow_tests.py writes it


def pytest_collection_modifyitems(config, items):
    """Mark the tests a full run measured as slow (tests/data/slow_tests.txt): `make test-quick`
    runs the rest."""
    if not os.path.exists(SLOW_TESTS):
        return
    with open(SLOW_TESTS) as f:
        slow = {line.strip() for line in f if line.strip() and not line.startswith("#")}
    for item in items:
        if item.nodeid in slow:
            item.add_marker(pytest.mark.slow)


def sample_rows():
    """[(emotion, pixels string, usage)] of the bundled sample, in file order."""
    with gzip.open(SAMPLE_CSV, "rt") as f:
        next(f)
        return [tuple(line.rstrip("\n").split(",")) for line in f]


def write_csv(path, rows, header="emotion,pixels,Usage"):
    with open(path, "w") as f:
        f.write(header + "\n")
        for row in rows:
            f.write(",".join(str(c) for c in row) + "\n")
    return path


def random_pixels(rng):
    return " ".join(str(v) for v in rng.randint(0, 256, 48 * 48))


@pytest.fixture(scope="session")
def sample_records(tmp_path_factory):
    from fer_tf.data import convert
    out = str(tmp_path_factory.mktemp("records") / "fer2013")
    convert.convert_fer2013(SAMPLE_CSV, out, progress=False)
    return out


@pytest.fixture(scope="session")
def ferplus_records(tmp_path_factory):
    from fer_tf.data import convert
    out = str(tmp_path_factory.mktemp("records") / "ferplus")
    convert.convert_fer2013(SAMPLE_CSV, out, ferplus_path=SAMPLE_FERPLUS, progress=False)
    return out


@pytest.fixture
def rng():
    return np.random.RandomState(0)


# Narrow LeNet7 layers, for tests where the width does not matter: the default's 34 MB
# checkpoints would be written, copied and hashed over and over (the bad-input cases copy and
# hash a whole model dir each).
LENET_NARROW = {"filters": [16, 32, 64], "fc_units": [64, 64]}
LENET_NARROW_FLAGS = [f"{name}={value}" for name, value in LENET_NARROW.items()]   # as --hparams values


@pytest.fixture(scope="session")
def lenet_run(sample_records, tmp_path_factory):
    """A narrow LeNet7 model dir trained a few steps on the sample (shared: never modify it)."""
    from fer_tf.training import run
    model_dir = str(tmp_path_factory.mktemp("lenet") / "run")
    run.train("lenet7", sample_records, model_dir, max_steps=6, log=lambda *a: None,
              overrides={"batch_size": 32, **LENET_NARROW})
    return model_dir


@pytest.fixture(scope="session")
def lenet_export(lenet_run, tmp_path_factory):
    """The standalone export of `lenet_run` (shared: never modify it)."""
    from fer_tf.serving import export
    return export.export(lenet_run, str(tmp_path_factory.mktemp("lenet_export") / "export"))
