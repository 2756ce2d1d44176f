"""The page at ``/`` of a real ``trainer.serve`` process, in headless Chromium (the DevTools helpers of
test_report_browser): choosing an image shows its captions with scores, hovering a word draws its attention over the
image, and a file that is not an image shows a readable error."""
import pytest
from serve_process import serving
from test_report_browser import browser, wait_for  # noqa: F401 - browser is a fixture

pytestmark = pytest.mark.browser


def choose_file(devtools, path) -> None:
    """Set the page's file input to ``path`` (as a user choosing it; fires its change event)."""
    root = devtools.send("DOM.getDocument")["root"]["nodeId"]
    node = devtools.send("DOM.querySelector", nodeId=root, selector="#file")["nodeId"]
    devtools.send("DOM.setFileInputFiles", files=[str(path)], nodeId=node)


SHADED_PIXELS = ("(() => { const data = document.getElementById('heat').getContext('2d')"
                 ".getImageData(0, 0, 320, 320).data; let shaded = 0;"
                 " for (let i = 3; i < data.length; i += 4) shaded += data[i] > 0; return shaded; })()")


def test_the_page_captions_an_upload_and_explains_a_non_image(browser, tiny_checkpoint, tmp_path):  # noqa: F811
    image = sorted(tiny_checkpoint[2].glob("*.jpg"))[0]
    with serving(tiny_checkpoint[0]) as server:
        for domain in ("Runtime", "Log", "Network", "Page", "DOM"):
            browser.send(f"{domain}.enable")
        browser.send("Page.navigate", url=server.url + "/")
        wait_for(browser, "document.readyState === 'complete'")

        choose_file(browser, image)
        wait_for(browser, "document.querySelectorAll('#captions .caption').length === 3", 120)
        first = browser.evaluate("document.querySelector('#captions .caption').textContent")
        assert "#1, score -" in first and browser.evaluate("document.querySelectorAll('#captions .word').length") > 0
        assert browser.evaluate("document.getElementById('error').textContent") == ""
        assert wait_for(browser, "document.getElementById('picture').naturalWidth") > 0
        assert browser.evaluate(SHADED_PIXELS) == 0
        browser.evaluate("document.querySelector('#captions .word').dispatchEvent(new MouseEvent('mouseenter'))")
        assert browser.evaluate(SHADED_PIXELS) > 0  # the word's attention shades the image
        assert browser.errors() == []

        text = tmp_path / "notes.txt"
        text.write_text("this is not an image")
        choose_file(browser, text)
        message = wait_for(browser, "document.getElementById('error').textContent", 60)
        assert message.startswith("Cannot caption notes.txt: not an image in a format we read"), message
        assert browser.evaluate("document.querySelectorAll('#captions .caption').length") == 0
