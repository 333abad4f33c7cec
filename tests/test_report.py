"""``facenet-tf evaluate --report DIR``: the page, its figures, the folder's ownership, and the page
in a real headless Chromium."""

import json
import os
import re
import shutil

import numpy as np
import pytest

from facenet_tf.cli import main
from facenet_tf.evaluation.report_html import REPORT_KIND, hardest_pairs

pytest.importorskip("matplotlib", reason="the report needs the [report] extra (matplotlib)")

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def orl_subset(orl_dir, tmp_path_factory):
    """A copy of 8 ORL people: enough pairs for ten folds, fast on raw pixels."""
    root = tmp_path_factory.mktemp("orl8")
    for k in range(1, 9):
        shutil.copytree(os.path.join(orl_dir, f"s{k}"), root / f"s{k}")
    return str(root)


@pytest.fixture(scope="module")
def report_dir(orl_subset, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("reports") / "orl")
    assert main(["evaluate", "--model", "raw-pixels", "--data-dir", orl_subset, "--report", out, "--quiet"]) == 0
    return out


def images_of(page):
    return re.findall(r"<img src='([^']+)'", page)


def test_report_page_links_every_figure_relatively(report_dir):
    page = open(os.path.join(report_dir, "index.html"), encoding="utf-8").read()
    sources = images_of(page)
    names = sorted(os.path.basename(s) for s in sources)
    for name in ("roc.png", "det.png", "distances.png", "folds.png"):
        assert name in names
    assert sum(n.startswith("pair_different_") for n in names) == 6
    assert sum(n.startswith("pair_same_") for n in names) == 6
    for src in sources:
        assert not os.path.isabs(src) and "://" not in src
        with open(os.path.join(report_dir, src), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert "http" not in page  # nothing fetched from the network
    assert sorted(os.listdir(os.path.join(report_dir, "figures"))) == names


def test_report_folder_is_claimed_and_rewritten_in_place(report_dir, orl_subset):
    with open(os.path.join(report_dir, ".facenet_tf-owner.json")) as f:
        record = json.load(f)
    assert record["entries"] == {"figures": REPORT_KIND, "index.html": REPORT_KIND}
    before = os.stat(os.path.join(report_dir, "index.html")).st_mtime_ns
    assert main(["evaluate", "--model", "raw-pixels", "--data-dir", orl_subset, "--report", report_dir,
                 "--quiet"]) == 0
    assert os.stat(os.path.join(report_dir, "index.html")).st_mtime_ns >= before
    assert sorted(os.listdir(report_dir)) == [".facenet_tf-owner.json", "figures", "index.html"]


def test_report_refuses_a_folder_of_the_users_before_embedding(orl_subset, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["evaluate", "--model", "raw-pixels", "--data-dir", orl_subset, "--report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--allow-existing-files" in err
    assert os.listdir(tmp_path) == ["notes.txt"]
    assert main(["evaluate", "--model", "raw-pixels", "--data-dir", orl_subset,
                 "--report", os.path.join(orl_subset, "report")]) == 2  # inside the data
    assert not os.path.exists(os.path.join(orl_subset, "report"))


def test_hardest_pairs_match_a_loop():
    rng = np.random.default_rng(0)
    d = rng.uniform(0, 2, 50)
    same = rng.uniform(size=50) < 0.3
    different, same_idx = hardest_pairs(d, same, k=4)
    assert list(different) == sorted((i for i in range(50) if not same[i]), key=lambda i: d[i])[:4]
    assert list(same_idx) == sorted((i for i in range(50) if same[i]), key=lambda i: -d[i])[:4]
    assert hardest_pairs(d[~same], same[~same], 3)[1].size == 0


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="the browser check needs selenium")
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.skip(f"no headless browser: {CHROMIUM} and {CHROMEDRIVER} are needed (Debian: apt-get install "
                    "chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1280,1600"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_report_page_renders_in_headless_chromium(browser, report_dir):
    browser.get("file://" + os.path.join(os.path.abspath(report_dir), "index.html"))
    widths = browser.execute_script(
        "return Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)")
    assert len(widths) == 16 and all(w > 0 for w in widths), widths
    png = browser.get_screenshot_as_png()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    from PIL import Image
    import io

    shot = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
    assert shot.std() > 10  # not a blank page
