"""Tests of salijax.report.explanation_panel: the PNG, its layout, bad input."""

import numpy as np
import pytest
from PIL import Image

from salijax.report.explanation_panel import PanelColumn, explanation_panel

RNG = np.random.default_rng(0)
TOP_K = [("tabby", 0.61), ("tiger cat", 0.2), ("a class name far too long to show in full", 0.1)]


def column(model="resnet18 (ImageNet)", methods=("gradcam", "rise"), size=32):
  image = RNG.uniform(size=(size, size, 3)).astype(np.float32)
  return PanelColumn(model, image, TOP_K,
                     {method: RNG.normal(size=(size, size)).astype(np.float32)
                      for method in methods})


def png_size(path):
  with Image.open(path) as image:
    image.load()
    return image.size


def test_writes_a_png_wider_with_more_models_and_taller_with_more_methods(tmp_path):
  sizes = {}
  for models, methods in ((1, ("gradcam",)), (3, ("gradcam",)), (1, ("gradcam", "rise", "lime"))):
    path = tmp_path / f"panel_{models}_{len(methods)}.png"
    explanation_panel(path, [column(f"model {i}", methods) for i in range(models)],
                      title="cat.jpg")
    sizes[models, len(methods)] = png_size(path)
  (w11, h11), (w31, h31), (w13, h13) = sizes[1, 1], sizes[3, 1], sizes[1, 3]
  assert w31 > 2 * w11 and abs(h31 - h11) < 0.2 * h11
  assert h13 > 1.5 * h11 and abs(w13 - w11) < 0.2 * w11
  assert not list(tmp_path.glob(".*"))  # written atomically: no temporary file left


def test_models_of_different_input_sizes_and_a_constant_map(tmp_path):
  constant = column("flat", size=24)
  constant.maps["rise"][:] = 0.5
  path = tmp_path / "mixed.png"
  explanation_panel(path, [column(size=40), constant], title="mixed", cmap="viridis", alpha=1)
  width, height = png_size(path)
  assert width > 300 and height > width


def test_class_model_row_sits_between_the_image_and_the_maps(tmp_path):
  """alpha = 1, cmap gray: a mid-grey image, a red class model, a map black on its right
  half; the three cells lie in that order from top to bottom, and the class model adds a row."""
  image = np.full((32, 32, 3), 0.5, np.float32)
  saliency = np.zeros((32, 32), np.float32)
  saliency[:, :16] = 1.0
  red = np.zeros((24, 24, 3), np.float32)
  red[..., 0] = 1.0
  with_row, without = tmp_path / "with.png", tmp_path / "without.png"
  explanation_panel(with_row, [PanelColumn("m", image, [("x", 1.0)], {"rise": saliency},
                                           class_model=red)], title="", cmap="gray", alpha=1.0)
  explanation_panel(without, [PanelColumn("m", image, [("x", 1.0)], {"rise": saliency})],
                    title="", cmap="gray", alpha=1.0)
  (w1, h1), (w0, h0) = png_size(with_row), png_size(without)
  assert abs(w1 - w0) < 0.2 * w0 and h1 > 1.2 * h0
  with Image.open(with_row) as png:
    pixels = np.asarray(png.convert("RGB"), np.float64)

  def rows(mask):  # rows crossed by > 100 px of `mask`: the cells, not text or the colorbar
    return np.flatnonzero(mask.sum(axis=1) > 100)

  grey = rows((np.abs(pixels - 128) < 3).all(axis=-1))
  reds = rows((pixels[..., 0] > 245) & (pixels[..., 1:] < 10).all(axis=-1))
  black = rows((pixels < 10).all(axis=-1))
  assert min(grey.size, reds.size, black.size) > 100
  assert grey.max() < reds.min() and reds.max() < black.min()


def test_overlay_shows_the_map_through_the_colormap(tmp_path):
  """alpha = 1, cmap gray, a map high on the left half: under the mid-grey image cell, the
  method cell is white on the left half and black on the right half."""
  saliency = np.zeros((32, 32), np.float32)
  saliency[:, :16] = 1.0
  image = np.full((32, 32, 3), 0.5, np.float32)
  path = tmp_path / "gray.png"
  explanation_panel(path, [PanelColumn("m", image, [("x", 1.0)], {"rise": saliency})],
                    title="", cmap="gray", alpha=1.0)
  with Image.open(path) as png:
    pixels = np.asarray(png.convert("L"), np.float64)

  def cell(mask):  # (ys, xs) of `mask` in rows where it covers > 100 px (not text or colorbar)
    return np.nonzero(mask & (mask.sum(axis=1, keepdims=True) > 100))

  grey_y, grey_x = cell(np.abs(pixels - 128) < 3)  # the image cell
  in_column = np.zeros_like(pixels, bool)
  in_column[:, grey_x.min():grey_x.max() + 1] = True  # not the row label left of the cells
  block_y, block_x = cell((pixels < 10) & in_column)  # the black half of the map cell
  assert grey_x.size > 100**2 and block_x.size > 100**2
  assert block_y.min() > grey_y.max()  # the map row is below the image row
  assert abs(block_x.min() - (grey_x.min() + grey_x.max()) / 2) <= 3
  assert abs(block_x.max() - grey_x.max()) <= 3
  assert (pixels[block_y.min():block_y.max() + 1, grey_x.min() + 3:block_x.min() - 3] > 245).all()


def test_bad_input(tmp_path):
  path = tmp_path / "bad.png"
  good = column()
  with pytest.raises(ValueError, match="columns must be a non-empty sequence"):
    explanation_panel(path, [], title="")
  with pytest.raises(TypeError, match=r"columns\[1\] must be a PanelColumn"):
    explanation_panel(path, [good, "resnet18"], title="")
  with pytest.raises(ValueError, match=r"columns\[0\].image must have shape \[h, w, 3\]"):
    explanation_panel(path, [PanelColumn("m", good.image[..., 0], TOP_K, {})], title="")
  with pytest.raises(ValueError, match=r"columns\[0\].image must hold finite values in \[0, 1\]"):
    explanation_panel(path, [PanelColumn("m", good.image * 2, TOP_K, {})], title="")
  wrong_shape = PanelColumn("m", good.image, TOP_K, {"gradcam": np.zeros((16, 32)),
                                                     "rise": np.zeros((32, 32))})
  with pytest.raises(ValueError, match=r"maps\['gradcam'\] must have shape \(32, 32\)"):
    explanation_panel(path, [wrong_shape], title="")
  nan = PanelColumn("m", good.image, TOP_K, {"gradcam": np.full((32, 32), np.nan)})
  with pytest.raises(ValueError, match="non-finite"):
    explanation_panel(path, [nan], title="")
  with pytest.raises(ValueError, match=r"columns\[1\].maps must explain the methods"):
    explanation_panel(path, [good, column(methods=("rise", "gradcam"))], title="")
  with pytest.raises(ValueError, match=r"columns\[0\].class_model must have shape \[h, w, 3\]"):
    explanation_panel(path, [PanelColumn("m", good.image, TOP_K, good.maps,
                                         class_model=good.image[..., 0])], title="")
  with pytest.raises(ValueError, match=r"columns\[0\].class_model must hold finite values"):
    explanation_panel(path, [PanelColumn("m", good.image, TOP_K, good.maps,
                                         class_model=-good.image)], title="")
  with pytest.raises(ValueError, match=r"columns\[1\].class_model must be given in every"):
    explanation_panel(path, [PanelColumn("m", good.image, TOP_K, good.maps,
                                         class_model=good.image), good], title="")
  with pytest.raises(ValueError, match="cmap must be a matplotlib colormap"):
    explanation_panel(path, [good], title="", cmap="nope")
  with pytest.raises(ValueError, match=r"alpha must be a number in \[0, 1\]"):
    explanation_panel(path, [good], title="", alpha=1.5)
  assert not path.exists()
