"""Test helper: open an HTML file from disk in headless Chromium (the `chromium` fixture).

Each call starts a fresh browser with its own profile folder, no network
services and no GPU, loads file://<page>, and returns what it printed:

  dom(chromium, page, tmp)          (the DOM after the page's scripts ran, console messages)
  screenshot(chromium, page, tmp)   (the PNG's path, console messages)
  check_screenshot(path, size)      it has the window's size and visible content
  driven_result(dom_text)           the JSON a driver script (`DRIVER_TEMPLATE`) wrote

A console message is any console.log/error or uncaught exception of the page
(Chromium logs them to stderr as "...:CONSOLE..." lines with --enable-logging).
"""

import html
import json
import pathlib
import re
import subprocess
import tempfile

import numpy as np
from PIL import Image

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0")
TIMEOUT = 120  # seconds for one browser run
CONSOLE = re.compile(r":CONSOLE[^\]]*\] (.*)")
RESULT = re.compile(r'<pre id="test-result">(.*?)</pre>', re.S)


def _run(chromium: str, page: pathlib.Path, tmp: pathlib.Path, *flags: str
         ) -> tuple[str, list[str]]:
  """(stdout, console messages) of one browser run on file://page."""
  profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=tmp)
  done = subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", *flags,
                         page.resolve().as_uri()], capture_output=True, text=True,
                        timeout=TIMEOUT, check=False)
  if done.returncode != 0:
    raise RuntimeError(f"chromium exited with {done.returncode}:\n{done.stderr[-3000:]}")
  return done.stdout, CONSOLE.findall(done.stderr)


def dom(chromium: str, page: pathlib.Path, tmp: pathlib.Path) -> tuple[str, list[str]]:
  """The serialised DOM once the page's scripts ran, and the console messages."""
  return _run(chromium, page, tmp, "--dump-dom")


def screenshot(chromium: str, page: pathlib.Path, tmp: pathlib.Path,
               size: tuple[int, int] = (1280, 1600)) -> tuple[pathlib.Path, list[str]]:
  """A screenshot (PNG, `size` = (width, height) pixels) of the page, and the console
  messages."""
  path = pathlib.Path(tempfile.mkdtemp(prefix="screenshot-", dir=tmp)) / "page.png"
  _, messages = _run(chromium, page, tmp, "--hide-scrollbars",
                     f"--window-size={size[0]},{size[1]}", f"--screenshot={path}")
  return path, messages


def check_screenshot(path: pathlib.Path, size: tuple[int, int]) -> None:
  """Asserts that the screenshot has the window's `size` and shows something: at least 1 %
  of its pixels differ from the most common colour (the background)."""
  with Image.open(path) as picture:
    assert picture.size == size
    pixels = np.asarray(picture.convert("RGB")).reshape(-1, 3)
  colours, counts = np.unique(pixels, axis=0, return_counts=True)
  background = colours[np.argmax(counts)]
  assert np.any(pixels != background, axis=1).mean() > 0.01
  assert pixels.astype(np.float64).var(axis=0).sum() > 0


# Appended to a copy of a page (after its own script): once the page and its images have
# loaded, `BODY` (JavaScript) fills the object `result`, which also lists every image's src
# (a data URL's first 40 characters) and natural width (0: not loaded); it is written as
# JSON into <pre id="test-result"> for `driven_result`.
DRIVER_TEMPLATE = """<script>
window.addEventListener("load", function () {
  var result = {errors: window.testErrors};
  result.images = Array.prototype.map.call(document.images, function (image) {
    var src = image.getAttribute("src");  // a data URL shortened to its start
    return [src.startsWith("data:") ? src.slice(0, 40) : src, image.naturalWidth];
  });
  try { BODY } catch (error) { result.driverError = String(error); }
  var out = document.createElement("pre");
  out.id = "test-result";
  out.textContent = JSON.stringify(result);
  document.body.appendChild(out);
});
</script>"""
ERROR_CATCHER = ("<script>window.testErrors = []; window.addEventListener('error', function (e)"
                 " { window.testErrors.push(String(e.message)); });</script>")


def driven_page(page_text: str, body: str, out: pathlib.Path) -> pathlib.Path:
  """Writes `page_text` with an error catcher first in <head> and the driver `body` last in
  <body> to `out`; returns `out`."""
  text = page_text.replace("<head>", "<head>\n" + ERROR_CATCHER, 1)
  text = text.replace("</body>", DRIVER_TEMPLATE.replace("BODY", body) + "\n</body>", 1)
  out.write_text(text)
  return out


def driven_result(dom_text: str) -> dict:
  """The driver's JSON result from a dumped DOM."""
  match = RESULT.search(dom_text)
  if match is None:
    raise AssertionError("the driver script wrote no result: " + dom_text[-2000:])
  return json.loads(html.unescape(match.group(1)))
