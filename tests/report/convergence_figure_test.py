"""Tests of salijax.report.convergence_figure."""

import numpy as np
import PIL.Image
import pytest

from salijax.report import plotting
from salijax.report.convergence_figure import MethodCost, convergence_figure

COSTS = {"mask_search": MethodCost(2.5, "forward", 5000),
         "gradcam": MethodCost(0.004, "gradient", 1),
         "random": MethodCost(0.0, None, 0)}


def objective(images=5, steps=40):
  rng = np.random.default_rng(0)
  return np.clip(0.5 + np.cumsum(rng.normal(0, 0.05, (images, steps)), axis=1), 0, 1)


def test_writes_a_png_that_is_not_blank(tmp_path):
  path = tmp_path / "run_mask_search.png"
  convergence_figure(path, objective(), COSTS, title="resnet18_scratch")
  with PIL.Image.open(path) as image:
    assert image.format == "PNG" and image.size[0] > 800 and image.size[1] > 400
    pixels = np.asarray(image.convert("L"))
  assert pixels.std() > 10  # lines, bars and text, not a flat canvas


def test_lines_are_each_image_and_their_mean_bars_the_seconds(monkeypatch, tmp_path):
  drawn = []
  monkeypatch.setattr(plotting, "save_figure", lambda figure, path: drawn.append(figure))
  values = objective(images=3, steps=7)
  convergence_figure(tmp_path / "f.png", values, COSTS, ylabel="p")
  (figure,) = drawn
  left, right = figure.axes
  lines = left.get_lines()
  assert len(lines) == 4  # three faint images, then the mean
  for line, curve in zip(lines, [*values, values.mean(axis=0)], strict=True):
    np.testing.assert_allclose(line.get_xdata(), np.arange(1, 8))
    np.testing.assert_allclose(line.get_ydata(), curve)
  assert lines[-1].get_linewidth() > lines[0].get_linewidth()
  assert left.get_ylabel() == "p"
  widths = [patch.get_width() for patch in right.patches]
  # Top to bottom in the costs' order; the zero-second control drawn at the axis' floor.
  assert widths[:2] == [2.5, 0.004] and 0 < widths[2] <= 0.004
  labels = [text.get_text() for text in right.texts]
  assert labels == [" 2.5 s, 5000 forward passes", " 0.004 s, 1 gradient pass",
                    " 0 s, no pass"]
  ticks = sorted(zip(right.get_yticks(), [t.get_text() for t in right.get_yticklabels()],
                     strict=True), reverse=True)
  assert [name for _, name in ticks] == list(COSTS)


@pytest.mark.parametrize(("values", "costs", "match"), [
    (np.zeros((3,)), COSTS, "objective"),
    (np.full((2, 3), np.nan), COSTS, "objective"),
    (np.zeros((2, 3)), {}, "costs"),
    (np.zeros((2, 3)), {"gradcam": (0.1, "gradient", 1)}, r"costs\['gradcam'\]"),
    (np.zeros((2, 3)), {"gradcam": MethodCost(-1.0, "gradient", 1)}, r"costs\['gradcam'\]"),
])
def test_bad_arguments_are_named(tmp_path, values, costs, match):
  with pytest.raises(ValueError, match=match):
    convergence_figure(tmp_path / "f.png", values, costs)
