"""The page at / in a real browser (headless Chromium through Selenium), as a new user: pick a photo, see the
instances drawn and listed, move the score slider (the drawing changes, no new request), download the COCO file
and read it with pycocotools. A screenshot and the page's text are kept in the test's folder on failure."""

from __future__ import annotations

import shutil
import tempfile
import time

import numpy as np
import pytest
from serve_helpers import running

from object_detection_utils import Segmenter, load_model, read_image

pytest.importorskip("fastapi", reason='the server needs its extra: pip install -e ".[serve]"')
webdriver = pytest.importorskip("selenium.webdriver", reason='the page test needs selenium: pip install -e ".[test]"')

from object_detection_utils.apps.serve.app import ServerSettings, create_app

CHROMIUM, CHROMEDRIVER = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs Chromium and its driver: apt-get install chromium chromium-driver")


def _wait(condition, what: str, seconds: float = 60):
    """Poll `condition()` until it is truthy (a bounded wait for the browser, not a timing assumption)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def browser(tmp_path, request):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,1000", f"--user-data-dir={tempfile.mkdtemp()}"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.downloads = downloads
    failures = request.session.testsfailed
    yield driver
    if request.session.testsfailed > failures:  # this test's call failed (reported before the teardown)
        driver.save_screenshot(str(tmp_path / "page.png"))
        (tmp_path / "page.txt").write_text(driver.find_element("tag name", "body").text)
        print(f"screenshot and page text kept in {tmp_path}")
    driver.quit()


def test_a_new_user_segments_a_photo_filters_without_a_new_request_and_downloads_coco(
        tiny_frozen_dir, shared_data, browser):
    from pycocotools.coco import COCO

    photo = shared_data / "photos" / "dog.jpg"
    model = load_model(tiny_frozen_dir)
    app = create_app(Segmenter(model), ServerSettings())
    want = Segmenter(model, min_score=0.05).segment(read_image(photo))  # the page asks from 0.05, then filters
    with running(app) as server:
        browser.get(server.url + "/")
        browser.find_element("id", "files").send_keys(str(photo))
        rows = _wait(lambda: browser.find_elements("css selector", "#instances tbody tr"), "the instance list")
        assert len(rows) == len(want)
        canvas = browser.find_element("id", "canvas")
        assert browser.execute_script("return [arguments[0].width, arguments[0].height]", canvas) == [
            want.image_size[1], want.image_size[0]]
        assert canvas.get_attribute("data-drawn") == str(int((want.scores >= 0.5).sum()))
        before = browser.execute_script("return arguments[0].toDataURL()", canvas)

        browser.execute_script("const s = document.getElementById('score'); s.value = '0.9';"
                               "s.dispatchEvent(new Event('input'))")
        assert canvas.get_attribute("data-drawn") == "1"  # only row 0 (0.95) stays
        assert browser.execute_script("return arguments[0].toDataURL()", canvas) != before
        assert browser.find_element("tag name", "body").get_attribute("data-requests") == "1"
        metrics = app.state.metrics.render().decode()
        assert 'segmentation_requests_total{route="/v1/segment",status="200"} 1.0' in metrics

        browser.find_element("id", "download-coco").click()
        path = _wait(lambda: next(iter(browser.downloads.glob("*_coco.json")), None), "the COCO download")
        _wait(lambda: path.stat().st_size > 0 and not list(browser.downloads.glob("*.crdownload")), "a whole file")
    coco = COCO(str(path))
    (annotation,) = coco.loadAnns(coco.getAnnIds())
    assert coco.loadImgs(annotation["image_id"])[0]["file_name"] == "dog.jpg"
    assert coco.loadCats(annotation["category_id"])[0]["name"] == want.class_names[0]
    assert np.array_equal(coco.annToMask(annotation).astype(bool), want.masks[0])
