"""The demo page in a real browser (Debian's chromium and chromium-driver, through Selenium): a 1 and a 7
drawn on the pad with real pointer events (mouse, finger and pen) are read as 1 and 7, Clear clears, and
the page loads nothing from elsewhere. Skipped, with the reason, where the browser or Selenium is missing
(.ci/run installs them; under CI=true a skip fails).

    LENET_FAST_DEMO_SCREENSHOT=docs/demo.png pytest tests/test_serve_browser.py

also saves a screenshot of the page with a drawn 7 (the README's picture)."""
import os
import shutil
import threading

import numpy as np
import pytest

from lenet_fast import LeNet5
from lenet_fast.apps.demo import DEFAULT_MODEL, make_server

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install '.[test]')")
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.actions import interaction  # noqa: E402
from selenium.webdriver.common.actions.pointer_input import PointerInput  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
PAD = 280                                        # the pad's size in CSS pixels
ONE = [[(150, 45), (136, 235)]]                  # strokes as polylines in pad pixels: a slanted bar
SEVEN = [[(75, 58), (205, 58)], [(205, 58), (120, 238)]]     # the top bar, then the diagonal


@pytest.fixture(scope="module")
def server():
    server = make_server(LeNet5.load(DEFAULT_MODEL), port=0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    binary = next(filter(None, map(shutil.which, BROWSERS)), None)
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        pytest.skip("no chromium and chromedriver on PATH (Debian: apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,1100"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(driver_path))
    yield driver
    driver.quit()


def draw(driver, strokes, pointer=interaction.POINTER_MOUSE):
    """Draw polylines on #pad with one pointer: press, move in small steps, release, for each stroke."""
    pad = driver.find_element("id", "pad")
    devices = None if pointer == interaction.POINTER_MOUSE else [PointerInput(pointer, pointer)]
    for stroke in strokes:
        actions = ActionChains(driver, duration=10, devices=devices)
        points = _steps(stroke)
        actions.move_to_element_with_offset(pad, *_offset(points[0])).click_and_hold()
        for point in points[1:]:
            actions.move_to_element_with_offset(pad, *_offset(point))
        actions.release().perform()


def _steps(stroke, step=15):
    points = [stroke[0]]
    for (x0, y0), (x1, y1) in zip(stroke, stroke[1:]):
        n = max(1, int(np.hypot(x1 - x0, y1 - y0) // step))
        points += [(round(x0 + (x1 - x0) * t), round(y0 + (y1 - y0) * t)) for t in np.arange(1, n + 1) / n]
    return points


def _offset(point):                              # Selenium's offsets are from the element's centre
    return point[0] - PAD // 2, point[1] - PAD // 2


def reading(driver, strokes):
    """The text of #prediction once the answer to the `strokes`-th stroke is shown."""
    prediction = driver.find_element("id", "prediction")
    WebDriverWait(driver, 30).until(lambda _: prediction.get_attribute("data-strokes") == str(strokes))
    return prediction.text


def clear(driver):
    driver.find_element("id", "clear").click()
    assert reading(driver, 0) == ""


def test_draw_a_one_and_a_seven(server, browser):
    browser.get(server.url)
    draw(browser, ONE)
    assert reading(browser, 1) == "1"
    assert len(browser.find_elements("css selector", "#maps canvas")) == 6 + 6 + 16 + 16
    assert len(browser.find_elements("css selector", "#scores li")) == 10
    clear(browser)
    assert browser.find_elements("css selector", "#maps canvas") == []
    draw(browser, SEVEN)
    assert reading(browser, 2) == "7"
    screenshot = os.environ.get("LENET_FAST_DEMO_SCREENSHOT")
    if screenshot:
        browser.save_screenshot(screenshot)


@pytest.mark.parametrize("pointer", [interaction.POINTER_TOUCH, interaction.POINTER_PEN])
def test_finger_and_pen(server, browser, pointer):
    browser.get(server.url)
    browser.execute_script("window.kinds = []; document.getElementById('pad').addEventListener("
                           "'pointerdown', (e) => window.kinds.push(e.pointerType));")
    draw(browser, SEVEN, pointer)
    assert reading(browser, 2) == "7"
    assert browser.execute_script("return window.kinds") == [pointer, pointer]
    clear(browser)
    draw(browser, ONE, pointer)
    assert reading(browser, 1) == "1"


def test_the_page_loads_nothing_from_elsewhere(server, browser):
    browser.get(server.url)
    draw(browser, ONE)
    reading(browser, 1)
    origin = server.url.rstrip("/")
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert resources and all(name.startswith(origin + "/") for name in resources)
    assert [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"] == []
