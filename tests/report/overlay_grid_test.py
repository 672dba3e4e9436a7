"""Tests of salijax.report.overlay_grid."""

import numpy as np
import PIL.Image
import pytest

from salijax.report import plotting
from salijax.report.overlay_grid import normalized_map, overlay_grid


def make_inputs(count=2, methods=("gradcam", "rise"), size=16):
  rng = np.random.default_rng(0)
  images = rng.uniform(size=(count, size, size, 3)).astype(np.float32)
  maps = {method: rng.normal(size=(count, size, size)).astype(np.float32) for method in methods}
  return images, maps


def png_size(path):
  with PIL.Image.open(path) as image:
    assert image.format == "PNG"
    return image.size


def test_writes_a_png_wider_with_more_methods_taller_with_more_images(tmp_path):
  sizes = {}
  for count, methods in ((2, ("a",)), (2, ("a", "b", "c", "d")), (4, ("a",))):
    images, maps = make_inputs(count, methods)
    path = tmp_path / f"grid_{count}_{len(methods)}.png"
    overlay_grid(path, images, maps, row_labels=[f"true: {i} / pred: {i}" for i in range(count)],
                 title="overlays")
    sizes[count, len(methods)] = png_size(path)
  (w2, h2), (w5, h5), (w2_tall, h2_tall) = sizes[2, 1], sizes[2, 4], sizes[4, 1]
  assert w5 > 1.8 * w2 and abs(h5 - h2) < 0.1 * h2
  assert h2_tall > 1.6 * h2 and w2_tall / h2_tall < w2 / h2


def test_draws_each_normalised_map_over_its_image(monkeypatch, tmp_path):
  drawn = []
  monkeypatch.setattr(plotting, "save_figure", lambda figure, path: drawn.append(figure))
  images, maps = make_inputs(2, ("gradcam", "rise"))
  maps["rise"][1] = 3.0  # a constant map ranks nothing: all low
  overlay_grid(tmp_path / "grid.png", images, maps, row_labels=["first", "second"],
               cmap="viridis", alpha=0.4)
  (figure,) = drawn
  grid = [ax for ax in figure.axes if ax.images]
  colorbars = [ax for ax in figure.axes if not ax.images]
  assert len(grid) == 2 * 3 and len(colorbars) == 1
  assert [ax.get_title() for ax in grid[:3]] == ["image", "gradcam", "rise"]
  assert [grid[0].get_ylabel(), grid[3].get_ylabel()] == ["first", "second"]
  assert "viridis: low → high saliency" in colorbars[0].get_xlabel()  # under the grid
  for row in range(2):
    np.testing.assert_allclose(grid[3 * row].images[0].get_array(), images[row], rtol=1e-6)
    for column, method in enumerate(("gradcam", "rise"), start=1):
      base, overlay = grid[3 * row + column].images
      np.testing.assert_allclose(base.get_array(), images[row], rtol=1e-6)
      saliency = maps[method][row].astype(np.float64)
      span = saliency.max() - saliency.min()
      want = (saliency - saliency.min()) / span if span else np.zeros_like(saliency)
      np.testing.assert_allclose(overlay.get_array(), want, atol=1e-6)
      assert overlay.get_alpha() == 0.4 and overlay.get_cmap().name == "viridis"
      assert overlay.get_clim() == (0.0, 1.0)
  plotting.pyplot().close(figure)


def test_normalized_map():
  np.testing.assert_allclose(normalized_map(np.array([[1.0, 3.0], [5.0, 2.0]])),
                             [[0.0, 0.5], [1.0, 0.25]])
  np.testing.assert_array_equal(normalized_map(np.full((2, 3), -7.0)), np.zeros((2, 3)))


@pytest.mark.parametrize("change, error, pattern", [
    ({"maps": {"rise": np.zeros((2, 16, 15), np.float32)}}, ValueError, r"maps\['rise'\]"),
    ({"maps": {"rise": np.full((2, 16, 16), np.nan, np.float32)}}, ValueError, "finite"),
    ({"maps": [np.zeros((2, 16, 16), np.float32)]}, TypeError, "mapping"),
    ({"images": np.zeros((2, 16, 16), np.float32)}, ValueError, "images"),
    ({"images": np.full((2, 16, 16, 3), 2.0, np.float32)}, ValueError, r"\[0, 1\]"),
    ({"row_labels": ["only one"]}, ValueError, "row_labels"),
    ({"alpha": 1.5}, ValueError, "alpha"),
    ({"cmap": "no_such_colormap"}, ValueError, "cmap"),
])
def test_bad_inputs_are_rejected(tmp_path, change, error, pattern):
  images, maps = make_inputs(2, ("rise",))
  kwargs = {"images": images, "maps": maps, **change}
  with pytest.raises(error, match=pattern):
    overlay_grid(tmp_path / "grid.png", **kwargs)
  assert not list(tmp_path.iterdir())
