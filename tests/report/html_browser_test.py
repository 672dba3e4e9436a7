"""The HTML pages in a real browser: headless Chromium opens them from disk (file://)."""

import io
import itertools
import math

import benchmark_page_test
import headless_chromium
import numpy as np
import pytest
from PIL import Image

from salijax.report import benchmark_page, explanations_page, overlay_image

SIZE = (1000, 1400)  # the screenshot's window, pixels


@pytest.fixture(name="benchmark_text", scope="module")
def fixture_benchmark_text():
  """A benchmark page of the test rows, with real overlays of random images and maps."""
  rng = np.random.default_rng(1)
  views = [benchmark_page.MapView(v.model, v.mode, v.method, v.label_mode, v.perturbation,
                                  v.image_id, overlay_image.overlay_png(
                                      rng.uniform(size=(24, 24, 3)),
                                      rng.normal(size=(24, 24))), v.caption)
           for v in benchmark_page_test.make_views()]
  return benchmark_page.benchmark_page_html("Benchmark", benchmark_page_test.make_rows(), views,
                                            controls=("random",))


def test_the_benchmark_page_runs_its_script_without_errors(chromium, tmp_path, benchmark_text):
  page = tmp_path / "index.html"
  page.write_text(benchmark_text)
  dom, messages = headless_chromium.dom(chromium, page, tmp_path)
  assert messages == []
  assert 'data-script="ready"' in dom
  cards = len(benchmark_page_test.make_views())
  assert f"{cards} of {cards} shown" in dom
  shot, messages = headless_chromium.screenshot(chromium, page, tmp_path, SIZE)
  assert messages == []
  headless_chromium.check_screenshot(shot, SIZE)


SORT_AND_FILTER = """
var table = document.querySelector("table.sortable");
var header = table.tHead.rows[0].cells[1];
function column() {
  return Array.prototype.map.call(table.tBodies[0].rows, function (row) {
    return row.cells[1].getAttribute("data-sort");
  });
}
result.original = column();
header.click();
result.ascending = column(); result.sortedAscending = table.getAttribute("data-sorted-by");
header.click();
result.descending = column(); result.sortedDescending = table.getAttribute("data-sorted-by");
var gallery = document.querySelector("div.gallery");
function choose(facet, value) {
  var select = gallery.querySelector('select[data-facet="' + facet + '"]');
  select.value = value;
  select.dispatchEvent(new Event("change"));
}
choose("method", "rise"); choose("perturbation", "rotate45");
result.shown = gallery.getAttribute("data-shown");
result.visible = Array.prototype.filter.call(gallery.querySelectorAll("figure.card"),
    function (card) { return !card.hidden; }).map(function (card) {
  return [card.getAttribute("data-method"), card.getAttribute("data-perturbation")];
});
result.count = gallery.querySelector(".count").textContent;
choose("method", "");
result.shownAfterAll = gallery.getAttribute("data-shown");
"""


def test_headers_sort_and_select_boxes_filter(chromium, tmp_path, benchmark_text):
  page = headless_chromium.driven_page(benchmark_text, SORT_AND_FILTER,
                                       tmp_path / "driven.html")
  dom, messages = headless_chromium.dom(chromium, page, tmp_path)
  result = headless_chromium.driven_result(dom)
  assert messages == [] and result["errors"] == [] and "driverError" not in result
  assert len(result["images"]) == len(benchmark_page_test.make_views())
  assert all(width == 24 for _, width in result["images"])  # every overlay decodes
  original = [float(v) for v in result["original"]]
  assert [float(v) for v in result["ascending"]] == sorted(original)
  assert [float(v) for v in result["descending"]] == sorted(original, reverse=True)
  assert (result["sortedAscending"], result["sortedDescending"]) == (
      "1 ascending", "1 descending")
  views = benchmark_page_test.make_views()
  expected = [v for v in views if v.method == "rise" and v.perturbation == "rotate45"]
  assert int(result["shown"]) == len(expected) == len(result["visible"])
  assert {tuple(v) for v in result["visible"]} == {("rise", "rotate45")}
  assert result["count"] == f"{len(expected)} of {len(views)} shown"
  assert int(result["shownAfterAll"]) == sum(v.perturbation == "rotate45" for v in views)


def test_missing_values_sort_last_both_ways(chromium, tmp_path):
  rows = [r for r in benchmark_page_test.make_rows()
          if not (r["method"] == "rise" and r["metric"] == "insertion_auc")]
  for row in rows:
    if row["method"] == "gradcam" and row["metric"] == "insertion_auc":
      row["value"] = math.nan
  text = benchmark_page.benchmark_page_html("t", rows, [], controls=())
  page = headless_chromium.driven_page(text, SORT_AND_FILTER.split("var gallery")[0],
                                       tmp_path / "missing.html")
  result = headless_chromium.driven_result(headless_chromium.dom(chromium, page, tmp_path)[0])
  assert result["errors"] == [] and "driverError" not in result
  for order in (result["ascending"], result["descending"]):
    assert order[-2:] == ["", ""]  # gradcam (NaN) and rise (no value) after random


def test_the_explanations_page_shows_panels_and_commentary(chromium, tmp_path):
  rng = np.random.default_rng(2)
  images = []
  for index, name in enumerate(("cat", "dog")):
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (300, 200, 3), np.uint8)).save(buffer, format="PNG")
    (tmp_path / f"{name}.png").write_bytes(buffer.getvalue())
    ranked = [{"class": c, "name": f"class {c}", "probability": p}
              for c, p in zip(itertools.count(index), (0.7, 0.2, 0.1))]
    images.append(explanations_page.ExplainedImage(
        name, f"{name}.jpg", f"{name}.png", {"resnet18": ranked, "vgg11": ranked},
        "The **ears** matter.\n\n- left\n- right" if name == "cat" else None))
  page = tmp_path / "index.html"
  page.write_text(explanations_page.explanations_page_html("Explanations", images,
                                                            ["gradcam"]))
  dom, messages = headless_chromium.dom(chromium, page, tmp_path)
  assert messages == [] and 'data-script="ready"' in dom
  assert "<strong>ears</strong>" in dom and "2 of 2 shown" in dom
  shot, messages = headless_chromium.screenshot(chromium, page, tmp_path, SIZE)
  assert messages == []
  headless_chromium.check_screenshot(shot, SIZE)


@pytest.mark.parametrize("broken", ["undefinedFunction();", "console.error('x');"])
def test_the_helper_reports_script_errors(chromium, tmp_path, benchmark_text, broken):
  """The checks above could fail: a page whose script throws or logs is caught."""
  page = tmp_path / "broken.html"
  page.write_text(benchmark_text.replace("})();\n</script>",
                                                f"}})();\n{broken}</script>"))
  _, messages = headless_chromium.dom(chromium, page, tmp_path)
  assert len(messages) == 1
