"""The page of `fer-tf serve` in a real headless Chromium (Debian's `chromium`, driven by
Playwright's Python client; nothing is downloaded): it loads from the server alone, and an
uploaded photo shows its two faces with labels, probability bars and smiles."""
import os
import shutil

import pytest

from conftest import TWO_FACES
from test_serve import served_models

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# .ci/run installs Debian's chromium and sets FER_TF_REQUIRE_BROWSER=1: there, a missing browser
# fails instead of skipping.
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("FER_TF_REQUIRE_BROWSER"),
    reason="no chromium on this machine (apt-get install chromium; .ci/run does)")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from playwright.sync_api import sync_playwright
    from fer_tf.apps.serve.process import ServerProcess
    assert CHROMIUM, "FER_TF_REQUIRE_BROWSER is set but chromium is not installed"
    server = ServerProcess("--models", served_models(tmp_path_factory.mktemp("served")), "--no-grpc")
    requests = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 760})
        page.on("request", lambda request: requests.append(request.url))
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(server.url + "/")
        page.wait_for_selector("body[data-ready=true]", timeout=60_000)
        yield page, server, requests, errors
        browser.close()
    assert server.stop() == 0


def test_the_page_loads_everything_from_the_server(page):
    page, server, requests, errors = page
    assert page.title() == "fer-tf: expressions in photos"
    assert page.locator("#model option").all_inner_texts() == ["default (v3)"]
    assert "Ready" in page.inner_text("#status")
    assert requests and all(url.startswith(server.url) or url.startswith("data:")
                            for url in requests), requests      # no CDN, nothing external
    assert not errors


def test_an_uploaded_photo_shows_its_two_faces_with_labels(page):
    page, server, requests, errors = page
    page.set_input_files("#files", TWO_FACES)
    card = page.wait_for_selector(".result[data-faces]", timeout=60_000)
    assert card.get_attribute("data-faces") == "2"
    faces = page.locator(".result .face")
    assert faces.count() == 2
    assert [faces.nth(i).get_attribute("data-label") for i in range(2)] == ["happy", "neutral"]
    text = card.inner_text()
    assert "two_faces.jpg: 2 face(s)" in text and "Face 0: happy" in text and "Face 1: neutral" in text
    assert text.count("smile") == 2
    # The photo is drawn with its boxes: the canvas is not blank where the left face's box is.
    drawn = page.evaluate("""() => {
        const canvas = document.querySelector('.result canvas');
        const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let lit = 0; for (let i = 0; i < pixels.length; i += 4) lit += pixels[i] + pixels[i + 1] > 0;
        return [canvas.width, canvas.height, lit]; }""")
    assert drawn[0] == 640 and drawn[1] > 300 and drawn[2] > 0.9 * drawn[0] * drawn[1]
    # The smiling face's smile bar is nearly full, the other nearly empty.
    widths = page.eval_on_selector_all(".result .face .bar:last-child .fill",
                                       "bars => bars.map(b => parseFloat(b.style.width))")
    assert widths[0] > 90 and widths[1] < 10
    assert not errors


def test_a_refused_photo_is_shown_as_an_error(page, tmp_path):
    page, server, requests, errors = page
    bad = tmp_path / "notes.jpg"
    bad.write_bytes(b"not a photo at all")
    page.set_input_files("#files", str(bad))
    page.wait_for_selector(".result.failed", timeout=60_000)
    assert "not a readable image" in page.inner_text(".result.failed")
    assert "error" in page.get_attribute("#status", "class")
