"""Tests of salijax.report.curve_figure."""

import math

import matplotlib.colors
import numpy as np
import PIL.Image
import pytest

from salijax.report import plotting
from salijax.report.curve_figure import (
    area_under_curve,
    insertion_deletion_figure,
    mean_curve_figure,
)


def make_curves(methods=("gradcam", "random", "rise", "fake_cam"), images=3, points=9):
  rng = np.random.default_rng(0)
  x = np.linspace(0.0, 1.0, points)
  return {method: (np.clip(x ** (0.5 + i) + rng.normal(0, 0.05, (images, points)), 0, 1),
                   np.clip(1 - x ** (0.5 + i) + rng.normal(0, 0.05, (images, points)), 0, 1))
          for i, method in enumerate(methods)}


def trapezoid(y):
  """The area under y on linspace(0, 1, T), panel by panel."""
  x = np.linspace(0.0, 1.0, len(y))
  return sum((x[i + 1] - x[i]) * (y[i] + y[i + 1]) / 2 for i in range(len(y) - 1))


def test_writes_a_wide_png(tmp_path):
  path = tmp_path / "curves.png"
  insertion_deletion_figure(path, make_curves(), title="ResNet18")
  with PIL.Image.open(path) as image:
    assert image.format == "PNG"
    width, height = image.size
  assert 1.8 < width / height < 3.0  # two square-ish panels side by side


def test_mean_curves_with_their_auc_and_controls_last(monkeypatch, tmp_path):
  drawn = []
  monkeypatch.setattr(plotting, "save_figure", lambda figure, path: drawn.append(figure))
  curves = make_curves()
  curves["lime"] = tuple(curve[:, ::2] for curve in make_curves(("lime",))["lime"])  # T = 5
  insertion_deletion_figure(tmp_path / "curves.png", curves)
  (figure,) = drawn
  insertion_ax, deletion_ax = figure.axes
  assert "inserted" in insertion_ax.get_xlabel() and "deleted" in deletion_ax.get_xlabel()
  assert insertion_ax.get_ylabel() == "class probability"
  for panel, ax in enumerate((insertion_ax, deletion_ax)):
    lines = ax.get_lines()
    names = [line.get_label().split(" (")[0] for line in lines]
    assert names == ["gradcam", "rise", "lime", "fake_cam", "random"]
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    for line, name, label in zip(lines, names, legend, strict=True):
      mean = curves[name][panel].mean(axis=0)
      np.testing.assert_allclose(line.get_ydata(), mean)
      np.testing.assert_allclose(line.get_xdata(), np.linspace(0, 1, mean.size))
      per_image = [trapezoid(curve) for curve in curves[name][panel]]
      assert label == f"{name} (AUC {np.mean(per_image):.3f})" == line.get_label()
      control = name in ("fake_cam", "random")
      assert (line.get_linestyle() != "-") == control
      red, green, blue = matplotlib.colors.to_rgb(line.get_color())
      assert (red == green == blue) == control  # controls grey, methods coloured
  plotting.pyplot().close(figure)


def test_area_under_curve():
  assert area_under_curve(np.array([0.0, 1.0])) == 0.5
  assert math.isclose(area_under_curve(np.array([1.0, 0.0, 1.0, 0.5])), trapezoid([1, 0, 1, 0.5]))


@pytest.mark.parametrize("curves, pattern", [
    ({}, "non-empty"),
    ({"rise": (np.zeros(5), np.zeros(5))}, r"curves\['rise'\] insertion must have shape"),
    ({"rise": (np.zeros((2, 1)), np.zeros((2, 1)))}, "T >= 2"),
    ({"rise": (np.zeros((2, 5)), np.zeros((2, 4)))}, r"curves\['rise'\] deletion"),
    ({"rise": (np.full((2, 5), np.nan), np.zeros((2, 5)))}, "finite"),
    ({"rise": np.zeros((3, 2, 5))}, "pair"),
    ({"rise": 0.5}, "pair"),
])
def test_bad_inputs_are_rejected(tmp_path, curves, pattern):
  with pytest.raises(ValueError, match=pattern):
    insertion_deletion_figure(tmp_path / "curves.png", curves)
  assert not list(tmp_path.iterdir())


def test_mean_curve_figure_draws_the_mean_of_each_method(monkeypatch, tmp_path):
  drawn = []
  monkeypatch.setattr(plotting, "save_figure", lambda figure, path: drawn.append(figure))
  curves = {method: pair[0] for method, pair in make_curves(("random", "rise")).items()}
  curves["rise"][0, 2] = np.nan  # a missing value (an object moved out of the image)
  mean_curve_figure(tmp_path / "c.png", curves, title="t", ylabel="score",
                    higher_is_better=False, controls=("random",))
  (figure,) = drawn
  (ax,) = figure.axes
  assert [line.get_label() for line in ax.get_lines()] == ["rise", "random"]
  np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), np.nanmean(curves["rise"], axis=0))
  assert ax.get_lines()[0].get_ydata()[2] == np.mean(curves["rise"][1:, 2])
  assert "lower is better" in ax.get_title() and ax.get_ylabel() == "score"
  plotting.pyplot().close(figure)
  monkeypatch.undo()
  mean_curve_figure(tmp_path / "c.png", curves)
  with PIL.Image.open(tmp_path / "c.png") as image:
    assert image.format == "PNG"


@pytest.mark.parametrize("curves, pattern", [
    ({}, "non-empty"),
    ({"rise": np.zeros(5)}, r"curves\['rise'\] must have shape \[N, T\]"),
    ({"rise": np.zeros((2, 1))}, "T >= 2"),
    ({"rise": np.array([[0.0, np.nan], [1.0, np.inf]])}, "a step without any finite value"),
])
def test_mean_curve_figure_rejects_bad_curves(tmp_path, curves, pattern):
  with pytest.raises(ValueError, match=pattern):
    mean_curve_figure(tmp_path / "c.png", curves)
  assert not list(tmp_path.iterdir())
