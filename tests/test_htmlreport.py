"""index.html: one self-contained page whose numbers are the CSV files', names as text.

The fast tier parses the page with ``html.parser``; the hardening tier opens it in headless
Chromium (Debian's ``chromium``), driven over the DevTools protocol on a pipe
(``--remote-debugging-pipe``: no port, no websocket), and records every console message,
uncaught exception, log entry (CSP refusals land there) and network request of the page.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import fcntl
import html.parser
import io
import json
import os
import re
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import SAMPLE_DIR, envelope, make_cluster, make_instance
from PIL import Image

import shadeanalytics as sa
from shadeanalytics.cli import main
from shadeanalytics.output.htmlreport import SECTIONS, headline, render_html
from shadeanalytics.output.report import write_report

SCRIPT_NAME = "<script>window.__pwned = 'cluster'</script>"
IMG_NAME = "<img src=x onerror=\"window.__pwned = 'instance'\">"
FORMULA_TAG = '=HYPERLINK("http://127.0.0.1:9/x","click")'
AS_OF = "2026-11-20T06:00:00Z"


# -- a parse of the page ------------------------------------------------------------------------

class _Page(html.parser.HTMLParser):
    """Tags with their attributes, headline figures, and each section's table as text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.figures: dict[tuple[str, str], str] = {}
        self.tables: dict[str, list[dict[str, str]]] = {}
        self.text: list[str] = []
        self._figure: tuple[str, str] | None = None
        self._in_value = self._in_unit = False
        self._section: str | None = None
        self._columns: list[str] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if a.get("class") == "figure":
            self._figure = (a["data-frame"] or "", a["data-column"] or "")
            self.figures[self._figure] = ""
        self._in_value = self._in_value or (tag == "dd" and a.get("class") == "value")
        self._in_unit = self._in_unit or (tag == "span" and a.get("class") == "unit")
        if tag == "section" and a.get("data-frame"):
            self._section = a["data-frame"] or ""
            self._columns = []
            self.tables[self._section] = []
        if tag == "th" and self._section:
            self._columns.append(a.get("title") or "")
        if tag == "tr":
            self._row = []
        if tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "dd":
            self._in_value = False
        if tag == "span":
            self._in_unit = False
        if tag == "td" and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        if tag == "tr" and self._row and self._section:
            self.tables[self._section].append(dict(zip(self._columns, self._row, strict=True)))
            self._row = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_value and not self._in_unit and self._figure:
            self.figures[self._figure] += data
        if self._cell is not None:
            self._cell.append(data)


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _number(text: str) -> float:
    """A number as the page shows it: ``$1,234.56``, ``-$5.00``, ``29.8%``, ``1,234``."""
    negative = text.startswith("-")
    value = float(text.lstrip("-").lstrip("$").rstrip("%").replace(",", ""))
    return -value if negative else value


def _check_headline_equals_csv(figures: dict[tuple[str, str], str], folder: Path) -> None:
    assert figures, "no headline figure on the page"
    for (frame, column), text in figures.items():
        total = sum(float(row[column]) for row in _csv(folder / f"{frame}.csv") if row[column])
        assert abs(_number(text) - total) < 0.005, (frame, column, text, total)


# -- fleets -------------------------------------------------------------------------------------

def _hostile_fleet(folder: Path) -> Path:
    """Two snapshots of a fleet whose names are markup and formulas; returns the folder."""
    evil = make_instance("i-evil", name=IMG_NAME, tags=[FORMULA_TAG, "<b>bold</b>"])
    plain = make_instance("i-plain", cloud="crusoe", hourly_price=190, tags=["team-a"])
    first = {"clusters": [make_cluster("c-evil", [evil], name=SCRIPT_NAME)]}
    later = {"clusters": [make_cluster("c-evil", [evil, plain], name=SCRIPT_NAME)]}
    folder.mkdir()
    (folder / "a.json").write_text(json.dumps(envelope(first, "2026-11-20T01:00:00Z")))
    (folder / "b.json").write_text(json.dumps(envelope(later, AS_OF)))
    return folder


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report (with charts) of the hostile fleet; returns its folder."""
    root = tmp_path_factory.mktemp("hostile")
    out = root / "report"
    write_report(sa.read(_hostile_fleet(root / "fleet")), out, as_of=AS_OF)
    return out


@pytest.fixture(scope="module")
def sample_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's command on the bundled sample, charts and all; returns the folder."""
    out = tmp_path_factory.mktemp("sample") / "reports"
    assert main(["report", str(SAMPLE_DIR), "--out", str(out)], stdout=io.StringIO()) == 0
    return out


# -- fast tier: the HTML as text ----------------------------------------------------------------

def test_sample_page_numbers_are_the_csv_files(tmp_path: Path) -> None:
    """Without charts: headline sums and every money cell of the cost tables equal the CSV."""
    assert main(["report", str(SAMPLE_DIR), "--out", str(tmp_path), "--no-charts"],
                stdout=io.StringIO()) == 0
    page = _Page((tmp_path / "index.html").read_text(encoding="utf-8"))
    assert set(page.figures) == {
        ("costs_by_cloud", "hourly_usd"), ("costs_by_cloud", "monthly_usd"),
        ("costs_by_cloud", "accrued_usd"), ("costs_by_cloud", "reported_cost_usd"),
        ("costs_by_cloud", "running_instances"), ("gpu_inventory", "gpus_running"),
        ("gpu_inventory", "gpus_pending"), ("forecast", "month_to_date_usd"),
        ("forecast", "forecast_usd")}
    _check_headline_equals_csv(page.figures, tmp_path)
    assert page.figures[("costs_by_cloud", "hourly_usd")] == "$1,669.42"
    for frame in ("costs_by_cloud", "costs_by_gpu_type", "costs_by_tag"):
        shown, written = page.tables[frame], _csv(tmp_path / f"{frame}.csv")
        assert len(shown) == len(written)
        for cells, row in zip(shown, written, strict=True):
            for column in ("hourly_usd", "monthly_usd", "accrued_usd", "reported_cost_usd"):
                assert cells[column] == f"${float(row[column]):,.2f}", (frame, column)
    # sections in SECTIONS order, each linking its own CSV file, which exists
    order = [a["data-frame"] for tag, a in page.tags if tag == "section" and a.get("data-frame")]
    assert order == ["costs_by_cloud", "costs_by_gpu_type", "costs_by_tag", "costs_by_service",
                     "quality", "gpu_inventory", "savings", "market_prices",
                     "clusters_summary", "lifecycle", "volumes", "timeline", "fleet_over_time",
                     "costs_daily", "costs_monthly"]
    links = {a["href"] or "" for tag, a in page.tags if tag == "a" and a.get("href")}
    assert {f"{name}.csv" for name in order} <= links
    assert all((tmp_path / h).is_file() for h in links if not h.startswith("#"))
    # --no-charts: no picture, no script, nothing fetched from anywhere
    assert not [t for t, _ in page.tags if t in ("img", "script", "iframe", "link", "object")]


def test_hostile_names_are_text_in_the_html(hostile_report: Path) -> None:
    """Markup in names is escaped text, formula-looking tags read as typed, charts are data."""
    page = _Page((hostile_report / "index.html").read_text(encoding="utf-8"))
    text = "".join(page.text)
    assert SCRIPT_NAME in text and IMG_NAME in text and "<b>bold</b>" in text
    assert FORMULA_TAG in text and "'" + FORMULA_TAG not in text
    assert "'" + FORMULA_TAG in [r["tag"] for r in _csv(hostile_report / "costs_by_tag.csv")]
    assert [t for t, _ in page.tags if t in ("script", "b")] == []
    images = [a["src"] or "" for t, a in page.tags if t == "img"]
    assert len(images) == 7
    assert all(src.startswith("data:image/svg+xml;base64,") for src in images)
    # the one meta that matters: a browser may fetch or run nothing
    csp = [a["content"] for t, a in page.tags if a.get("http-equiv") == "Content-Security-Policy"]
    assert csp == ["default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
                   "base-uri 'none'; form-action 'none'"]
    svg = base64.b64decode(images[0].split(",", 1)[1]).decode("utf-8")
    assert svg.startswith("<svg ") and "<!DOCTYPE" not in svg


def test_each_chart_links_its_png(hostile_report: Path) -> None:
    """Under each chart, a link to its PNG file in the folder: the chart at full size."""
    text = (hostile_report / "index.html").read_text(encoding="utf-8")
    pngs = re.findall(r'<figcaption class="file">full size: <a href="([^"]+)">', text)
    assert len(pngs) == text.count("<figure><img ")  # one per chart on the page
    assert sorted(pngs) == sorted(p.name for p in hostile_report.glob("*.png"))


@pytest.mark.hardening
def test_same_data_same_page(hostile_report: Path, tmp_path: Path) -> None:
    """The page, charts included, is the same bytes on a second run: scheduled runs diff."""
    write_report(sa.read(_hostile_fleet(tmp_path / "fleet")), tmp_path / "again", as_of=AS_OF)
    again = (tmp_path / "again" / "index.html").read_bytes()
    assert again == (hostile_report / "index.html").read_bytes()


def test_sections_are_data_driven() -> None:
    """A frame in SECTIONS shows when present (costs_by_service), missing ones are left out."""
    assert [s.frame for s in SECTIONS][:4] == ["costs_by_cloud", "costs_by_gpu_type",
                                               "costs_by_tag", "costs_by_service"]
    service = pd.DataFrame({"service": ["storage", "=compute"], "hourly_usd": [1.0, 2.5],
                            "share_of_hourly": [0.2857, 0.7143], "other": [1, 2]})
    at = pd.Timestamp(AS_OF)
    page = _Page(render_html({"costs_by_service": service}, as_of=at,
                             files=["costs_by_service.csv"]))
    assert page.tables == {"costs_by_service": [
        {"service": "storage", "hourly_usd": "$1.00", "share_of_hourly": "28.6%"},
        {"service": "=compute", "hourly_usd": "$2.50", "share_of_hourly": "71.4%"}]}
    assert page.figures == {}  # no costs_by_cloud, no gpu_inventory: no headline
    assert ("a", {"href": "costs_by_service.csv"}) in page.tags


def test_volume_prices_show_their_digits_and_headers_read_like_the_others() -> None:
    """The sample's volumes: $0.0001 per GB-hour (not 0.00), and headings for people."""
    from shadeanalytics.output.report import analytics

    volumes = analytics(sa.read(SAMPLE_DIR), as_of="2026-11-20T00:00:00Z",
                        only=("volumes",))["volumes"]
    text = render_html({"volumes": volumes}, as_of=pd.Timestamp(AS_OF))
    page = _Page(text)
    rows = page.tables["volumes"]
    assert [(r["name"], r["price_per_gb_per_hour_usd"], r["billed_price_usd"]) for r in rows] == [
        ("old-checkpoints", "$0.00012", "$0.06"), ("data-vllm-serve-009", "$0.0001", "$0.10"),
        ("data-sd-train-013", "$0.00012", "$0.24"), ("scratch-orphan", "$0.0001", "$0.20")]
    head = text.split('<section id="volumes"', 1)[1].split("</thead>", 1)[0]
    assert re.findall(r">([^<>]+)</th>", head) == [
        "name", "cloud", "region", "size (GB)", "mounted by", "state", "price per GB-hour",
        "billed per hour", "accrued", "Shadeform estimate"]


def test_headline_reads_one_place() -> None:
    """headline(): column sums of the frames it names, NA skipped, negatives signed."""
    costs = pd.DataFrame({"hourly_usd": [1.005, 2.0, float("nan")],
                          "monthly_usd": [-1234.5, 0.0, 0.0],
                          "running_instances": pd.array([1, None, 2], dtype="Int64")})
    inventory = pd.DataFrame({"gpus_running": pd.array([8, 4], dtype="Int64"),
                              "gpus_pending": pd.array([0, 1], dtype="Int64")})
    figures = headline({"costs_by_cloud": costs, "gpu_inventory": inventory})
    assert [(f.label, f.text, f.unit) for f in figures] == [
        ("Burn rate", "$3.00", "/h"), ("Month projection (730 h)", "-$1,234.50", "/month"),
        ("Running instances", "3", ""), ("GPUs running", "12", ""), ("GPUs pending", "1", "")]
    assert figures[0].value == pytest.approx(3.005)


def test_no_html_and_no_charts_flags(tmp_path: Path) -> None:
    """--no-html writes no index.html; index.html is the last file written."""
    fleet = _hostile_fleet(tmp_path / "fleet")
    out = io.StringIO()
    assert main(["report", str(fleet), "--out", str(tmp_path / "a"), "--no-html",
                 "--no-charts"], stdout=out) == 0
    assert not (tmp_path / "a" / "index.html").exists()
    files = write_report(sa.read(fleet), tmp_path / "b", as_of=AS_OF, charts=False)
    assert files[-1].name == "index.html"
    page = _Page(files[-1].read_text(encoding="utf-8"))
    linked = [a["href"] for t, a in page.tags if t == "a" and a.get("class") is None
              and not (a.get("href") or "#").startswith("#")]
    # the version files (versions/*.parquet) are left off the page
    assert set(linked) == {f.name for f in files[:-1] if f.parent.name != "versions"}


# -- hardening tier: the page in headless Chromium ----------------------------------------------

CHROMIUM = shutil.which("chromium")


def _chromium() -> str:
    # a failure, not a skip: the hardening tier is the browser check, and .ci/run installs it
    if CHROMIUM is None:
        pytest.fail("Debian's chromium is not installed (apt-get install chromium; .ci/run "
                    "does it)")
    return CHROMIUM

_DEADLINE_S = 60.0


class _Chromium:
    """Headless Chromium driven over ``--remote-debugging-pipe`` (fd 3 in, fd 4 out)."""

    def __init__(self, profile: Path) -> None:
        to_browser_r, self._out = os.pipe()
        self._in, from_browser_w = os.pipe()
        # out of the way of 3 and 4 before the child moves them there
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_browser_r,
                                                                     from_browser_w)]

        def pipes() -> None:
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        self.process = subprocess.Popen(
            [_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
             "--remote-debugging-pipe", "--hide-scrollbars", "--no-first-run",
             "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-extensions", f"--user-data-dir={profile}",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=pipes, close_fds=False)
        for fd in (to_browser_r, from_browser_w, *high):
            os.close(fd)
        self._buffer = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._next()
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))

    def wait_for(self, method: str) -> dict[str, Any]:
        while True:
            message = self._next()
            if message.get("method") == method:
                return message

    def _next(self) -> dict[str, Any]:
        end = time.monotonic() + _DEADLINE_S
        while b"\0" not in self._buffer:
            left = end - time.monotonic()
            if left <= 0 or not select.select([self._in], [], [], left)[0]:
                raise AssertionError("chromium did not answer in time")
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise AssertionError("chromium closed the pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message = json.loads(raw)
        if "method" in message:
            self.events.append(message)
        return dict(message)

    def close(self) -> None:
        with contextlib.suppress(AssertionError):  # it may be gone already
            self.send("Browser.close")
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)
        os.close(self._in)
        os.close(self._out)


class _Tab:
    """A page opened in a fresh tab, with what it logged and fetched."""

    def __init__(self, browser: _Chromium, url: str, width: int) -> None:
        self.browser = browser
        self.url = url
        target = browser.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = browser.send("Target.attachToTarget", targetId=target,
                                    flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable", self.session)
        self.resize(width)
        first = len(browser.events)
        browser.send("Page.navigate", self.session, url=url)
        browser.wait_for("Page.loadEventFired")
        self.events = [e for e in browser.events[first:] if e.get("sessionId") == self.session]

    def resize(self, width: int) -> None:
        self.browser.send("Emulation.setDeviceMetricsOverride", self.session, width=width,
                          height=900, deviceScaleFactor=1, mobile=width < 600)

    def evaluate(self, expression: str) -> Any:
        result = self.browser.send("Runtime.evaluate", self.session, expression=expression,
                                   returnByValue=True)
        return result["result"].get("value")

    def screenshot(self) -> Image.Image:
        data = self.browser.send("Page.captureScreenshot", self.session, format="png")["data"]
        return Image.open(io.BytesIO(base64.b64decode(data)))

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions and log errors, as text."""
        found = []
        for e in self.events:
            p = e.get("params", {})
            if e["method"] == "Runtime.consoleAPICalled" and p["type"] in ("error", "warning",
                                                                           "assert"):
                found.append(f"console.{p['type']}: {p['args']}")
            elif e["method"] == "Runtime.exceptionThrown":
                found.append(f"exception: {p['exceptionDetails'].get('text')}")
            elif e["method"] == "Log.entryAdded" and p["entry"]["level"] in ("error", "warning"):
                found.append(f"log: {p['entry']['text']}")
        return found

    def requests(self) -> list[str]:
        """Every URL the page asked for, the page itself and data: URLs left out."""
        urls = [e["params"]["request"]["url"] for e in self.events
                if e["method"] == "Network.requestWillBeSent"]
        return [u for u in urls if u != self.url and not u.startswith("data:")]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One headless Chromium for the module's browser tests."""
    chromium = _Chromium(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield chromium
    finally:
        chromium.close()


_PAGE_FACTS = """JSON.stringify({
  scripts: document.scripts.length,
  images: [...document.images].map(i => [i.src.slice(0, 26), i.complete && i.naturalWidth > 0]),
  figures: [...document.querySelectorAll('.figure')].map(f => [f.dataset.frame,
      f.dataset.column, f.querySelector('.value').firstChild.textContent]),
  text: document.body.innerText,
  pwned: window.__pwned === undefined ? null : String(window.__pwned),
  width: document.documentElement.scrollWidth,
})"""


def _not_blank(image: Image.Image, width: int) -> None:
    assert image.width == width
    grey = image.convert("L")
    low, high = grey.getextrema()
    assert high - low > 100, "a flat screenshot"  # type: ignore[operator]  # "L": 2 ints
    histogram = grey.histogram()
    assert max(histogram) < 0.97 * sum(histogram), "almost all one colour"


@pytest.mark.hardening
def test_harness_sees_errors_and_requests(browser: _Chromium, tmp_path: Path) -> None:
    """The checks can fail: a page that logs, throws and fetches is caught on all three."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><p>bad</p><img src='http://127.0.0.1:9/pixel.png'>"
                   "<script>console.error('boom'); window.__pwned = 1; undefinedCall()</script>")
    tab = _Tab(browser, bad.as_uri(), 1280)
    assert tab.requests() == ["http://127.0.0.1:9/pixel.png"]
    problems = tab.problems()
    assert any("boom" in p for p in problems)
    assert any(p.startswith("exception:") for p in problems)
    assert json.loads(tab.evaluate(_PAGE_FACTS))["pwned"] == "1"


@pytest.mark.hardening
def test_sample_page_in_chromium(browser: _Chromium, sample_report: Path,
                                 tmp_path: Path) -> None:
    """The sample report: quiet, offline, headline = CSV, fits 390 px and paper, not blank."""
    page = sample_report / "index.html"
    assert page.stat().st_size <= 2 * 1024 * 1024
    tab = _Tab(browser, page.as_uri(), 1280)
    assert tab.problems() == []
    assert tab.requests() == []
    facts = json.loads(tab.evaluate(_PAGE_FACTS))
    assert facts["scripts"] == 0
    assert facts["images"] == [["data:image/svg+xml;base64,", True]] * 8  # CHART_FILES
    figures = {(frame, column): text for frame, column, text in facts["figures"]}
    assert len(figures) == 9
    _check_headline_equals_csv(figures, sample_report)
    assert "Burn rate\n$1,669.42/h" in facts["text"]
    _not_blank(tab.screenshot(), 1280)
    # at 1280 px every table fits its box: none scrolls sideways
    boxes = tab.evaluate("[...document.querySelectorAll('.scroll')]"
                         ".map(d => d.scrollWidth - d.clientWidth)")
    assert boxes and max(boxes) <= 0, boxes
    tab.resize(390)
    # at phone width the page itself never scrolls sideways (wide tables do, in their box),
    # and every chart fits the screen: none is cropped
    assert json.loads(tab.evaluate(_PAGE_FACTS))["width"] == 390
    rights = tab.evaluate("[...document.querySelectorAll('figure img')]"
                          ".map(i => Math.ceil(i.getBoundingClientRect().right))")
    assert rights and max(rights) <= 390, rights
    _not_blank(tab.screenshot(), 390)
    # printed (A4 less 12 mm margins is about 700 CSS px), nothing is cut off at the right
    browser.send("Emulation.setEmulatedMedia", tab.session, media="print")
    tab.resize(700)
    widths = tab.evaluate("[...document.querySelectorAll('table, figure, dl')]"
                          ".map(e => e.scrollWidth)")
    assert len(widths) == 23 and max(widths) <= 700, widths  # 14 tables, 8 charts, 1 headline


@pytest.mark.hardening
def test_hostile_names_in_chromium(browser: _Chromium, hostile_report: Path) -> None:
    """Markup in names renders as text: no script ran, nothing fetched, no CSP refusal."""
    tab = _Tab(browser, (hostile_report / "index.html").as_uri(), 1280)
    assert tab.problems() == []
    assert tab.requests() == []
    facts = json.loads(tab.evaluate(_PAGE_FACTS))
    assert facts["pwned"] is None
    assert facts["scripts"] == 0
    assert all(src == "data:image/svg+xml;base64," and ok for src, ok in facts["images"])
    for name in (SCRIPT_NAME, IMG_NAME, FORMULA_TAG, "<b>bold</b>"):
        assert name in facts["text"]
    assert "'" + FORMULA_TAG not in facts["text"]


@pytest.mark.hardening
def test_cli_screenshots_are_not_blank(sample_report: Path, tmp_path: Path) -> None:
    """``chromium --headless --screenshot`` at 1280 and 390 px wide draws the page."""
    for width in (1280, 390):
        shot = tmp_path / f"{width}.png"
        subprocess.run(
            [_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
             "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}",
             f"--screenshot={shot}", f"--window-size={width},1600",
             (sample_report / "index.html").as_uri()],
            check=True, capture_output=True, timeout=_DEADLINE_S)
        with Image.open(shot) as image:
            _not_blank(image, width)

