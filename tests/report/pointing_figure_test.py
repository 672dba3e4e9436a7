"""Tests of salijax.report.pointing_figure: the file, and verdicts and marks as drawn."""

import numpy as np
import pytest
from PIL import Image

from salijax import metrics
from salijax.report import plotting
from salijax.report.pointing_figure import label_text, pointing_figure

SIZE = 16
TOLERANCE = 2.0
# The object of every image: rows 4..7, columns 4..7 (a box with pixel edges 4/16 .. 8/16).
MASKS = np.zeros((3, SIZE, SIZE), bool)
MASKS[:, 4:8, 4:8] = True
BOXES = np.tile(np.array([[4, 4, 8, 8]], np.float32) / SIZE, (3, 1))


def peaked(*peaks):
  """f32[H,W]: random values in [0, 1) with value 2 at each (row, col) of `peaks`."""
  saliency = np.random.default_rng(len(peaks)).random((SIZE, SIZE)).astype(np.float32)
  for row, col in peaks:
    saliency[row, col] = 2.0
  return saliency


# Per method, the peaks of images 0..2 and whether each hits (by construction, TOLERANCE 2).
CASES = {
    "inside": ([(5, 5)], [(4, 7)], [(7, 4)]),
    "outside": ([(14, 14)], [(0, 0)], [(4, 11)]),  # sqrt(98), sqrt(32) and 4 px away
    "near": ([(9, 5)], [(5, 2)], [(9, 9)]),  # 2, 2 and sqrt(8) px away
    "tie": ([(15, 15), (6, 6)], [(0, 15), (15, 0)], [(9, 9), (5, 9)]),
}
HITS = {"inside": [True, True, True], "outside": [False, False, False],
        "near": [True, True, False], "tie": [True, False, True]}
MARKED = {"tie": [(6, 6), (0, 15), (5, 9)]}  # the maximum nearest the region


def maps():
  return {method: np.stack([peaked(*peaks) for peaks in images])
          for method, images in CASES.items()}


@pytest.fixture
def drawn(monkeypatch):
  """Records each saved figure's panels: [(title, [(label, marker xy)] per row)] per column."""
  figures = []
  save = plotting.save_figure

  def recording(figure, path):
    axes = np.array(figure.axes[:len(CASES) * 3]).reshape(3, len(CASES))
    figures.append([(axes[0, c].get_title(),
                     [(axes[r, c].texts[0].get_text(),
                       tuple(int(v[0]) for v in axes[r, c].lines[-1].get_data()[::-1]))
                      for r in range(3)]) for c in range(len(CASES))])
    save(figure, path)

  monkeypatch.setattr(plotting, "save_figure", recording)
  return figures


@pytest.mark.parametrize("region", [MASKS, BOXES], ids=["masks", "boxes"])
def test_the_labels_and_marks_are_the_pointing_game_s(tmp_path, drawn, region):
  images = np.random.default_rng(0).random((3, SIZE, SIZE, 3)).astype(np.float32)
  path = tmp_path / "pointing.png"
  marks = pointing_figure(path, images, maps(), region, tolerance=TOLERANCE,
                          row_labels=["a", "b", "c"], title="t")
  with Image.open(path) as image:
    assert image.size[0] > 200 and image.size[1] > 200
  (columns,) = drawn
  for (method, method_maps), (title, panels) in zip(maps().items(), columns, strict=True):
    game = metrics.pointing_game(method_maps, MASKS, tolerance=TOLERANCE)
    hit = np.asarray(game.hit).tolist()
    assert hit == HITS[method] and marks[method].hit.tolist() == hit
    assert [label.split(",")[0].split(" ")[0] for label, _ in panels] == [
        "hit" if h else "miss" for h in hit]
    assert title == f"{method}: {sum(hit)}/3 hits"
    marked = MARKED.get(method, [peaks[0] for peaks in CASES[method]])
    assert [xy for _, xy in panels] == marked
    for (label, _), distance, count in zip(panels, np.asarray(game.distance),
                                           np.asarray(game.num_maxima), strict=True):
      assert label == label_text("hit" in label, float(distance), int(count))
  assert [label for label, _ in columns[1][1]] == ["miss, 9.9 px", "miss, 5.66 px",
                                                   "miss, 4 px"]
  assert columns[3][1][0][0] == "hit (2 maxima)"


def test_bad_arguments():
  images = np.zeros((3, SIZE, SIZE, 3), np.float32)
  with pytest.raises(ValueError, match="at least one method"):
    pointing_figure("p.png", images, {}, MASKS)
  with pytest.raises(ValueError, match=r"maps\['gradcam'\] must have shape"):
    pointing_figure("p.png", images, {"gradcam": np.zeros((2, SIZE, SIZE))}, MASKS)
  with pytest.raises(ValueError, match="row_labels must hold 3"):
    pointing_figure("p.png", images, maps(), MASKS, row_labels=["a"])
  with pytest.raises(ValueError, match="region must hold at least one pixel"):
    pointing_figure("p.png", images, maps(), np.zeros_like(MASKS))
