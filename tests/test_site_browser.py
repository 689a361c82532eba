"""The static web leaderboard in a real browser: Debian's chromium, headless, through selenium.

The site is rendered from the committed records (``results/records``) into the test's tmp
folder and opened as a user would: served by ``http.server`` and straight from disk. The page
must raise no console error and request nothing outside its own folder; sorting a column must
order it (missing values last), filtering must hide the other rows, every number a table shows
must be its ``leaderboard.csv`` field under the page's rounding rule, and the figures must draw,
with a hover naming the row. Screenshots are saved under the test's tmp folder.

Needs ``chromium`` and ``chromedriver`` on PATH (``.ci/run`` installs Debian's ``chromium`` and
``chromium-driver`` when missing); without them the tests are skipped with that reason. Nothing
downloads a browser: selenium is given both paths, so its Selenium Manager never runs.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import re
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bench.records import load_records
from bench.reporting.frame import leaderboard_csv
from bench.reporting.site import write_site
from tests.factories import ROOT
from tests.site_expect import shown  # noqa: E402

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
if CHROMIUM is None or CHROMEDRIVER is None:
    pytest.skip(
        "chromium and chromedriver must be on PATH (Debian: apt-get install chromium "
        f"chromium-driver; .ci/run does); found chromium={CHROMIUM}, chromedriver={CHROMEDRIVER}",
        allow_module_level=True,
    )
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (the dev extra) is needed")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

RESULTS = ROOT / "results"
LOAD_TIMEOUT_S = 60.0


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The site of the committed records, in a tmp folder, and the CSV text of those records."""
    if not (RESULTS / "records").is_dir():
        pytest.skip(f"{RESULTS / 'records'} is missing: the committed results are needed")
    records = load_records(RESULTS)
    text = leaderboard_csv(records)
    folder = tmp_path_factory.mktemp("site") / "site"
    write_site(RESULTS, records, text, site_dir=folder)
    return folder, text


@pytest.fixture(scope="module")
def server(site: tuple[Path, str]) -> Iterator[str]:
    """``http://127.0.0.1:PORT/``, serving the site folder (``python -m http.server`` alike)."""
    handler = functools.partial(_Quiet, directory=str(site[0]))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    """Headless chromium through chromedriver, both the system's (never downloaded)."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
        "--hide-scrollbars",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    browser = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield browser
    finally:
        browser.quit()


def open_page(driver: Any, url: str) -> dict[str, Any]:
    """Loads ``url``, waits until the script and every figure are done; what the load logged."""
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get_log("performance")
    start = time.monotonic()
    driver.get(url)
    while True:
        state = driver.execute_script(
            "return [document.body && document.body.getAttribute('data-ready'),"
            " document.querySelectorAll('script.plot-spec').length,"
            " document.querySelectorAll('[data-rendered]').length]"
        )
        if state[0] == "1" and state[1] == state[2]:
            break
        if time.monotonic() - start > LOAD_TIMEOUT_S:
            raise AssertionError(f"{url} not ready after {LOAD_TIMEOUT_S} s: {state}")
        time.sleep(0.1)
    requests = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requests.append(message["params"]["request"]["url"])
    return {
        "seconds": time.monotonic() - start,
        "figures": state[1],
        "console": driver.get_log("browser"),
        "requests": requests,
    }


@pytest.fixture()
def page(driver: Any, server: str) -> Any:
    """The driver on a freshly loaded page (over http), checked for console errors."""
    loaded = open_page(driver, server + "index.html")
    assert [e for e in loaded["console"] if e["level"] in ("SEVERE", "ERROR")] == []
    return driver


@pytest.mark.parametrize("how", ["http", "file"])
def test_the_page_loads_offline_without_console_errors(driver, server, site, how) -> None:
    folder, _ = site
    url = server + "index.html" if how == "http" else (folder / "index.html").as_uri()
    loaded = open_page(driver, url)
    assert loaded["console"] == [], loaded["console"]  # no error, no warning, no log
    base = url.rsplit("/", 1)[0] + "/"
    outside = [u for u in loaded["requests"] if not (u.startswith(base) or u.startswith("data:"))]
    assert outside == []  # nothing from a CDN, no remote font
    assert any(u.endswith("/plotly.min.js") for u in loaded["requests"])
    assert loaded["figures"] >= 3
    print(f"{how}: page ready in {loaded['seconds']:.2f} s, {loaded['figures']} figures")


def column_index(table: Any, header_start: str) -> int:
    headers = [th.text for th in table.find_elements(By.CSS_SELECTOR, "thead th")]
    return next(i for i, h in enumerate(headers) if h.replace("\n", " ").startswith(header_start))


def sort_keys(driver: Any, table: Any, column: int) -> list[str]:
    return driver.execute_script(
        "return Array.from(arguments[0].tBodies[0].rows).filter(r => !r.hidden)"
        ".map(r => r.cells[arguments[1]].getAttribute('data-sort'))",
        table,
        column,
    )


def test_sorting_a_column_orders_its_rows(page) -> None:
    tables = page.find_elements(By.CSS_SELECTOR, "table.board")
    table = max(tables, key=lambda t: len(t.find_elements(By.CSS_SELECTOR, "tbody tr")))
    column = column_index(table, "mIoU %")
    header = table.find_elements(By.CSS_SELECTOR, "thead th")[column]
    before = sort_keys(page, table, column)
    assert len(before) >= 3
    header.click()
    assert header.get_attribute("aria-sort") == "ascending"
    ascending = sort_keys(page, table, column)
    numbers = [float(k) for k in ascending if k]
    assert numbers == sorted(numbers) and ascending[len(numbers) :] == [""] * (
        len(ascending) - len(numbers)
    )  # missing values last
    assert sorted(ascending) == sorted(before)  # the same rows
    header.click()
    assert header.get_attribute("aria-sort") == "descending"
    descending = [float(k) for k in sort_keys(page, table, column) if k]
    assert descending == sorted(numbers, reverse=True)
    # Sorting by another column (text) orders by its text.
    arch = table.find_elements(By.CSS_SELECTOR, "thead th")[column_index(table, "Architecture")]
    arch.click()
    names = sort_keys(page, table, column_index(table, "Architecture"))
    assert names == sorted(names, key=str.lower)


def test_filtering_hides_the_other_rows(page) -> None:
    tables = page.find_elements(By.CSS_SELECTOR, "table.board")
    table = max(tables, key=lambda t: len(t.find_elements(By.CSS_SELECTOR, "tbody tr")))
    table_id = table.get_attribute("id")
    box = page.find_element(By.CSS_SELECTOR, f'input.filter[data-table="{table_id}"]')
    rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
    arch = rows[0].find_element(By.CSS_SELECTOR, '[data-col="arch"], [data-col="weights"]').text
    box.send_keys(arch)
    visible = [r for r in rows if r.is_displayed()]
    assert 1 <= len(visible) < len(rows)
    assert all(arch.lower() in r.text.lower() for r in visible)
    counter = page.find_element(By.CSS_SELECTOR, f'[data-count-for="{table_id}"]').text
    assert counter == f"{len(visible)} of {len(rows)} rows"
    box.clear()
    box.send_keys(" ")  # an input event with an empty query
    assert all(r.is_displayed() for r in rows)
    # The box in the header filters every table at once.
    page.find_element(By.ID, "filter-all").send_keys("no such architecture")
    assert all(
        not r.is_displayed() for r in page.find_elements(By.CSS_SELECTOR, "table.board tbody tr")
    )


# Every value element of every table row: (run id, column, CSV text, shown text, class).
_VALUES_JS = """
const out = [];
const stray = [];
for (const row of document.querySelectorAll('table.board tbody tr')) {
  const run = row.getAttribute('data-run-id');
  for (const el of row.querySelectorAll('[data-col]')) {
    out.push([run, el.getAttribute('data-col'), el.getAttribute('data-value'), el.textContent,
              el.className]);
  }
  for (const cell of row.cells) {
    const copy = cell.cloneNode(true);
    copy.querySelectorAll('.n, .t, .x, .r').forEach(e => e.remove());
    if (/[0-9]/.test(copy.textContent)) stray.push([run, cell.textContent]);
  }
}
return [out, stray];
"""


def test_every_number_shown_equals_the_csv(page, site) -> None:
    _, text = site
    by_run = {r["run_id"]: r for r in csv.DictReader(io.StringIO(text))}
    values, stray = page.execute_script(_VALUES_JS)
    assert stray == []  # no digit on a row outside a value taken from the CSV
    assert {run for run, *_ in values} == set(by_run)  # every CSV row is on the page
    numbers = 0
    for run, column, value, content, css in values:
        assert value == by_run[run][column], (run, column)
        if css == "n":
            assert content == shown(column, value), (run, column, value, content)
            numbers += 1
        elif css == "t":
            assert content == value, (run, column)
    assert numbers >= 10 * len(by_run) // 2


def test_figures_draw_and_hovering_a_point_names_its_row(page, site) -> None:
    _, text = site
    by_run = {r["run_id"]: r for r in csv.DictReader(io.StringIO(text))}
    figures = page.find_elements(By.CSS_SELECTOR, ".js-plotly-plot")
    assert len(figures) == len(page.find_elements(By.CSS_SELECTOR, "script.plot-spec"))
    figure = figures[0]
    page.execute_script("arguments[0].scrollIntoView({block: 'center'})", figure)
    point = figure.find_element(By.CSS_SELECTOR, ".scatterlayer .trace .points path")
    ActionChains(page).move_to_element(point).perform()
    deadline = time.monotonic() + 10
    while not (hover := figure.find_elements(By.CSS_SELECTOR, ".hoverlayer .hovertext")):
        assert time.monotonic() < deadline, "no hover label"
        time.sleep(0.1)
    label = hover[0].text
    highlighted = page.find_elements(By.CSS_SELECTOR, "tr.hl")
    assert highlighted, "hovering a point highlights no table row"
    row = by_run[highlighted[0].get_attribute("data-run-id")]
    assert row["title"] in label and f"mIoU {shown('miou', row['miou'])}%" in label


def test_screenshots(page, tmp_path: Path) -> None:
    """The top of the page and the whole page, for a person to look at (paths printed)."""
    top = tmp_path / "site-top.png"
    assert page.save_screenshot(str(top))
    height = page.execute_script("return document.documentElement.scrollHeight")
    page.set_window_size(1400, min(int(height), 16000))
    whole = tmp_path / "site-full.png"
    assert page.save_screenshot(str(whole))
    page.set_window_size(1400, 1000)
    for path in (top, whole):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 20_000
    print(f"screenshots: {top} {whole}")
    assert re.search(r"Semantic-segmentation leaderboard", page.title)
