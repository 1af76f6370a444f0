"""The README is a front door and the docs site builds: `mkdocs build --strict` (no broken link,
no missing page), every page in the nav, every README link to an existing file."""
import os
import re
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def nav_pages(nav):
    for entry in nav:
        for value in entry.values():
            if isinstance(value, list):
                yield from nav_pages(value)
            else:
                yield value


def test_docs_site_builds_strict_with_every_page_in_the_nav(tmp_path):
    with open(os.path.join(ROOT, "mkdocs.yml")) as f:
        config = yaml.safe_load(f)
    pages = set(nav_pages(config["nav"]))
    on_disk = {p for p in os.listdir(os.path.join(ROOT, "docs")) if p.endswith(".md")}
    assert on_disk == pages, f"not in the nav: {sorted(on_disk - pages)}; missing: {sorted(pages - on_disk)}"
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "site" / "dlib-resnet" / "index.html").is_file()


def test_readme_is_a_front_door():
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    assert len(text.splitlines()) <= 300
    first_screen = "\n".join(text.splitlines()[:60])
    assert "fer-tf predict" in first_screen and "fer_tf.Analyzer()" in first_screen
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        assert os.path.exists(os.path.join(ROOT, target)), target
