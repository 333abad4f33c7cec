"""The web page of ``facenet-tf serve`` in a real headless Chromium (Selenium, the system's browser and
driver): enrol people through the page's file input, identify a photo, see the name and its box."""

import os
import time

import pytest

pytest.importorskip("fastapi", reason="facenet-tf serve needs the [serve] extra (fastapi, uvicorn, python-multipart)")
pytest.importorskip("uvicorn", reason="facenet-tf serve needs the [serve] extra (uvicorn)")
pytest.importorskip("selenium", reason="the browser test drives Chromium with selenium (test extra)")

from serve_helpers import free_port  # noqa: E402

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
#: The box colour of a recognised face (app.js).
KNOWN_RGB = (0x00, 0xC8, 0x53)


@pytest.fixture(scope="module")
def browser():
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip(f"headless browser test needs {CHROMIUM} and {CHROMEDRIVER} (Debian: apt install chromium "
                    "chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,1600"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)  # never downloads a driver
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def photos(orl_dir, tmp_path_factory):
    """ORL photos as PNG (browsers do not draw PGM): ``{(person, i): path}``."""
    from PIL import Image

    out = tmp_path_factory.mktemp("browser_photos")
    paths = {}
    for person, i in [("s1", 1), ("s1", 2), ("s1", 5), ("s2", 1)]:
        paths[person, i] = str(out / f"{person}_{i}.png")
        Image.open(os.path.join(orl_dir, person, f"{i}.pgm")).convert("RGB").save(paths[person, i])
    return paths


@pytest.fixture(scope="module")
def server(dlib_dir, tmp_path_factory):
    """uvicorn on 127.0.0.1 in a thread of this process (the page needs a real server, not the test
    client; a thread spares a second TensorFlow start-up): an object with its ``url``."""
    import threading
    import types

    import uvicorn

    from facenet_tf.service import ServeConfig, create_app

    port = free_port()
    config = ServeConfig(model=dlib_dir, gallery=str(tmp_path_factory.mktemp("browser_server") / "people.gallery"),
                         port=port)
    served = uvicorn.Server(uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=served.run, daemon=True)
    thread.start()
    while not served.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        time.sleep(0.05)
    yield types.SimpleNamespace(url=f"http://127.0.0.1:{port}")
    served.should_exit = True
    thread.join(timeout=30)


def text_contains(element_id, text):
    from selenium.webdriver.common.by import By

    return lambda driver: text in driver.find_element(By.ID, element_id).text


def test_enrol_identify_and_remove_through_the_page(browser, server, photos):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60)
    browser.get(server.url + "/")
    wait.until(text_contains("people-status", "nobody enrolled yet"))

    for person, files in (("s1", [photos["s1", 1], photos["s1", 2]]), ("s2", [photos["s2", 1]])):
        browser.find_element(By.ID, "enroll-name").clear()
        browser.find_element(By.ID, "enroll-name").send_keys(person)
        browser.find_element(By.ID, "enroll-files").send_keys("\n".join(files))
        browser.find_element(By.ID, "enroll-button").click()
        wait.until(text_contains("enroll-status", f"enrolled {len(files)} photo(s) of {person}"))
    wait.until(text_contains("people", "s1 (2 photo(s))"))
    assert "s2 (1 photo(s))" in browser.find_element(By.ID, "people").text

    browser.find_element(By.ID, "identify-file").send_keys(photos["s1", 5])
    browser.find_element(By.ID, "identify-button").click()
    wait.until(text_contains("identify-status", "1 face(s)"))
    assert browser.find_element(By.CSS_SELECTOR, "#identify-result li.face").text.startswith("s1 (distance ")
    # The photo is drawn at its own size with the face's box in the "known" colour.
    width, height, box_pixels = browser.execute_script(
        """const c = document.getElementById('identify-canvas');
           const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
           let n = 0;
           for (let i = 0; i < d.length; i += 4) {
             if (Math.abs(d[i] - arguments[0]) < 8 && Math.abs(d[i + 1] - arguments[1]) < 8
                 && Math.abs(d[i + 2] - arguments[2]) < 8) n++;
           }
           return [c.width, c.height, n];""", *KNOWN_RGB)
    assert (width, height) == (92, 112) and box_pixels > 100

    remove = browser.find_element(By.XPATH, "//ul[@id='people']/li[starts-with(normalize-space(.), 's2 ')]/button")
    remove.click()
    wait.until(lambda driver: "s2" not in driver.find_element(By.ID, "people").text)
    assert "s1 (2 photo(s))" in browser.find_element(By.ID, "people").text

    # A mistake is shown on the page, not swallowed: enrolling without a name.
    browser.find_element(By.ID, "enroll-name").clear()
    browser.find_element(By.ID, "enroll-files").send_keys(photos["s2", 1])
    browser.find_element(By.ID, "enroll-button").click()
    wait.until(lambda driver: "error" in driver.find_element(By.ID, "enroll-status").get_attribute("class"))
