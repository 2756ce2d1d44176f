"""The evaluation report in a real browser: headless Chromium driven over the DevTools protocol (loopback only).

Loads DIR/index.html written by `python -m trainer.evaluate_checkpoint --report DIR` on the tiny checkpoint, checks there is no
console error or failed resource, one card per test image, that sorting orders the cards, and saves a screenshot.
In CI (CI=true) a missing Chromium is a failure; locally the test skips with the reason.
"""
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from test_report import TEST_IMAGES, evaluated_report

pytestmark = pytest.mark.browser

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
STARTUP_SECONDS = 60


def find_chromium() -> str:
    for name in CHROMIUM_NAMES:
        if path := shutil.which(name):
            return path
    message = f"no Chromium on PATH (looked for {', '.join(CHROMIUM_NAMES)}); apt-get install -y chromium"
    if os.environ.get("CI"):
        pytest.fail(message + " -- .ci/run installs it; CI must run the browser test")
    pytest.skip(message)


class DevTools:
    """A headless Chromium with one page, driven by DevTools protocol commands over its websocket."""

    def __init__(self, chromium: str, profile: Path):
        import websocket  # websocket-client (test extra)

        self.process = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
             "--disable-background-networking", "--disable-extensions", "--remote-debugging-address=127.0.0.1",
             "--remote-debugging-port=0", f"--user-data-dir={profile}", "--window-size=1280,1000", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file, deadline = profile / "DevToolsActivePort", time.monotonic() + STARTUP_SECONDS
        while not (port_file.is_file() and port_file.read_text().strip()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"{chromium} did not open its DevTools port within {STARTUP_SECONDS} s")
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            page = next(target for target in json.load(response) if target["type"] == "page")
        self.socket = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30)
        self.next_id, self.events = 0, []

    def send(self, method: str, **params) -> dict:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and failed loads seen so far."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(json.dumps(params["exceptionDetails"])[:500])
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(json.dumps(params.get("args"))[:500])
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(f"{params['entry'].get('url', '')}: {params['entry']['text']}")
            elif method == "Network.loadingFailed":
                found.append(f"load failed: {params.get('errorText')} ({params.get('requestId')})")
        return found

    def close(self) -> None:
        if getattr(self, "socket", None) is not None:
            self.socket.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def browser():
    chromium = find_chromium()
    with tempfile.TemporaryDirectory(prefix="showattend-chromium-") as profile:
        devtools = DevTools(chromium, Path(profile))
        try:
            yield devtools
        finally:
            devtools.close()


def wait_for(devtools: DevTools, expression: str, seconds: float = 30.0):
    deadline = time.monotonic() + seconds
    while not (value := devtools.evaluate(expression)):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        time.sleep(0.1)
    return value


LOAD_EVERY_IMAGE = ("Promise.all([...document.images].map(image => { image.loading = 'eager';"
                    " return image.decode().catch(() => null); })).then(() => true)")


def load_page(devtools: DevTools) -> None:
    """Wait until the page has loaded, then load its lazy images too (those below the fold)."""
    wait_for(devtools, "document.readyState === 'complete'")
    devtools.evaluate(LOAD_EVERY_IMAGE)


def card_scores(devtools: DevTools) -> list[float]:
    return devtools.evaluate("[...document.querySelectorAll('#cards .card')].map(card => Number(card.dataset.cider))")


def test_report_in_headless_chromium(browser, tmp_path_factory, tmp_path):
    report, results = evaluated_report(tmp_path_factory)
    cider = sorted(round(row["scores"]["CIDEr"], 4) for row in json.loads(results.read_text()))
    for domain in ("Runtime", "Log", "Network", "Page"):
        browser.send(f"{domain}.enable")
    browser.send("Emulation.setDeviceMetricsOverride", width=1280, height=1000, deviceScaleFactor=1, mobile=False)
    browser.send("Page.navigate", url=report.as_uri())
    load_page(browser)

    assert browser.errors() == []
    assert browser.evaluate("document.querySelectorAll('#cards .card').length") == TEST_IMAGES
    assert browser.evaluate("document.querySelectorAll('table.summary tbody tr').length") == 3  # model, blind, human
    assert browser.evaluate("[...document.images].every(image => image.naturalWidth > 0)")
    assert browser.evaluate("document.querySelectorAll('#cards .strip img').length") == TEST_IMAGES

    assert card_scores(browser) == cider  # the default order: CIDEr-D, worst first
    browser.evaluate("(() => { const s = document.getElementById('sort'); s.value = 'CIDEr:desc';"
                     " s.dispatchEvent(new Event('change')); })()")
    assert card_scores(browser) == cider[::-1]
    one_id = browser.evaluate("document.querySelector('#cards .card').dataset.id")
    browser.evaluate(f"(() => {{ const f = document.getElementById('filter'); f.value = 'id:{one_id}';"
                     f" f.dispatchEvent(new Event('input')); }})()")
    assert browser.evaluate("[...document.querySelectorAll('#cards .card')].map(card => card.dataset.id)") == [one_id]
    browser.evaluate("(() => { const f = document.getElementById('filter'); f.value = '';"
                     " f.dispatchEvent(new Event('input')); })()")

    screenshot = tmp_path / "report.png"
    shot = browser.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    screenshot.write_bytes(base64.b64decode(shot["data"]))
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 10_000
    assert browser.errors() == []


def test_five_thousand_images_stay_fast(browser, tmp_path):
    """A COCO-sized test split: one page of cards is rendered, and re-sorting all 5,000 records takes well under a
    second (the page holds the records as data, not 5,000 DOM cards)."""
    from trainer.evaluation.report.page import render_page

    records = [{"id": str(index), "caption": f"a caption number {index}", "refs": ["one reference", "another one"],
                "scores": {"CIDEr": (index * 7919 % 5000) / 1000, "Bleu_4": (index % 97) / 97}, "words": [],
                "image": None, "strip": None} for index in range(5000)]
    page = tmp_path / "index.html"
    page.write_text(render_page("big", "5,000 images", "", "", records, {"panel": 96, "scores": ["CIDEr", "Bleu_4"]}),
                    encoding="utf-8")
    for domain in ("Runtime", "Log", "Page"):
        browser.send(f"{domain}.enable")
    browser.send("Page.navigate", url=page.as_uri())
    load_page(browser)
    assert browser.evaluate("document.querySelectorAll('#cards .card').length") == 24
    assert "of 5000" in browser.evaluate("document.getElementById('page-info').textContent")
    seconds = browser.evaluate("(() => { const s = document.getElementById('sort'); const start = performance.now();"
                               " s.value = 'CIDEr:desc'; s.dispatchEvent(new Event('change'));"
                               " return (performance.now() - start) / 1000; })()")
    assert card_scores(browser) == sorted((record["scores"]["CIDEr"] for record in records), reverse=True)[:24]
    assert seconds < 1.0, f"re-sorting 5,000 records took {seconds:.2f} s"
    browser.evaluate("document.getElementById('next').click()")
    assert "25\u201348 of 5000" in browser.evaluate("document.getElementById('page-info').textContent")
    assert browser.errors() == []
