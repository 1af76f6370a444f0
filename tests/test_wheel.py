"""The package as a user installs it: a wheel built from the sources, installed into a fresh
venv outside the repository, finds its shipped models and analyses a photo through the API."""
import glob
import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

from conftest import TWO_FACES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.timeout(600)
def test_wheel_in_a_fresh_venv_finds_its_models(tmp_path):
    source = tmp_path / "src"             # a copy, so the build leaves nothing in the repository
    source.mkdir()
    shutil.copy(os.path.join(ROOT, "setup.py"), source)
    for folder in ("fer_tf", "models"):
        shutil.copytree(os.path.join(ROOT, folder), source / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(wheels), str(source)], check=True)
    wheel, = glob.glob(str(wheels / "fer_tf-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    # The dependencies (TensorFlow & co.) come from the test venv through a .pth file — that
    # directory holds no fer_tf of its own (the test venv installs it editable) — and the wheel
    # is installed for real, without its dependencies.
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    with open(os.path.join(site, "deps.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel],
                   check=True)
    script = (
        "import fer_tf, os\n"
        "from fer_tf.serving import exported\n"
        "assert fer_tf.__file__.startswith(os.environ['VENV']), fer_tf.__file__\n"
        "default = exported.shipped_model('default')\n"
        "assert default.startswith(os.environ['VENV']), default\n"
        "result = fer_tf.Analyzer().analyze(os.environ['FACE'])\n"
        "for face in sorted(result.faces, key=lambda f: f.box[0]):\n"
        "    print(face.label, round(face.smile, 3))\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FER_TF_MODEL")}
    env.update(VENV=str(venv), FACE=TWO_FACES, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([python, "-c", script], cwd=str(tmp_path), env=env, check=True,
                         capture_output=True, text=True, timeout=300)
    left, right = [line.split() for line in out.stdout.strip().splitlines()]
    assert left[0] == "happy" and float(left[1]) > 0.5
    assert right[0] == "neutral" and float(right[1]) < 0.5
