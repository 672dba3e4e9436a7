"""Tests of salijax.report.sanity_figure."""

import matplotlib.colors
import numpy as np
import PIL.Image
import pytest

from salijax.report import plotting
from salijax.report.sanity_figure import sanity_figure

BLOCKS = ("fc", "layer4", "layer3", "layer2", "layer1", "conv1")


def make_similarity(measures=("spearman", "ssim", "hog"), methods=("gradcam", "rise"), n=4):
  rng = np.random.default_rng(0)
  decay = np.linspace(0.9, 0.0, len(BLOCKS))[:, None]
  return {method: {measure: decay + rng.normal(0, 0.1, (len(BLOCKS), n)) for measure in measures}
          for method in methods}


def png_size(path):
  with PIL.Image.open(path) as image:
    assert image.format == "PNG"
    return image.size


def test_one_panel_per_measure(tmp_path):
  one, three = tmp_path / "one.png", tmp_path / "three.png"
  sanity_figure(one, BLOCKS, make_similarity(("spearman",)), {}, title="sanity")
  sanity_figure(three, BLOCKS, make_similarity(), {"gradcam": {"ssim": 0.2}})
  (w1, h1), (w3, h3) = png_size(one), png_size(three)
  assert w3 > 2 * w1 and abs(h3 - h1) < 0.2 * h1


def test_lines_bands_and_baselines(monkeypatch, tmp_path):
  drawn = []
  monkeypatch.setattr(plotting, "save_figure", lambda figure, path: drawn.append(figure))
  similarity = make_similarity(("mine", "ssim", "spearman"), ("gradcam", "rise", "fake_cam"))
  del similarity["rise"]["ssim"]  # a method may lack a measure
  similarity["gradcam"]["spearman"][2, 1] = np.nan  # left out of the mean
  baseline = {"gradcam": {"spearman": 0.25, "ssim": np.array([[0.1, 0.3], [0.2, np.nan]])},
              "rise": {"spearman": 0.4}}
  sanity_figure(tmp_path / "sanity.png", BLOCKS, similarity, baseline)
  (figure,) = drawn
  panels = list(figure.axes)
  assert [ax.get_title() for ax in panels] == ["Spearman rank correlation", "SSIM", "mine"]
  for ax, measure in zip(panels, ("spearman", "ssim", "mine"), strict=True):
    assert [tick.get_text() for tick in ax.get_xticklabels()] == list(BLOCKS)
    methods = [method for method in similarity if measure in similarity[method]]
    solid = [line for line in ax.get_lines() if line.get_linestyle() == "-"]
    dotted = [line for line in ax.get_lines() if line.get_linestyle() == ":"]
    assert len(solid) == len(methods) and len(ax.collections) == len(methods)  # bands
    for line, method in zip(solid, methods, strict=True):
      np.testing.assert_allclose(line.get_ydata(), np.nanmean(similarity[method][measure], 1))
      np.testing.assert_allclose(line.get_xdata(), np.arange(len(BLOCKS)))
    levels = {tuple(matplotlib.colors.to_rgb(line.get_color())): line.get_ydata()[0]
              for line in dotted}
    colours = {method: tuple(matplotlib.colors.to_rgb(line.get_color()))
               for line, method in zip(solid, methods, strict=True)}
    want = {colours[method]: np.nanmean(baseline[method][measure]) for method in methods
            if measure in baseline.get(method, {})}
    assert levels.keys() == want.keys()
    for colour, level in want.items():
      np.testing.assert_allclose(levels[colour], level)
  band = panels[0].collections[0].get_paths()[0].vertices[:, 1]
  values = similarity["gradcam"]["spearman"]
  mean, std = np.nanmean(values, 1), np.nanstd(values, 1)
  np.testing.assert_allclose([band.min(), band.max()], [(mean - std).min(), (mean + std).max()])
  legend = [text.get_text() for text in figure.legends[0].get_texts()]
  assert legend[:3] == ["gradcam", "rise", "fake_cam"]
  plotting.pyplot().close(figure)


@pytest.mark.parametrize("blocks, similarity, baseline, error, pattern", [
    (BLOCKS[:-1], make_similarity(), {}, ValueError, r"similarity\['gradcam'\]\['spearman'\]"),
    (BLOCKS, {"rise": {"ssim": np.zeros(len(BLOCKS))}}, {}, ValueError, r"\[num_blocks, n\]"),
    ((), make_similarity(), {}, ValueError, "block_names"),
    ("fc", make_similarity(), {}, ValueError, "block_names"),
    (BLOCKS, {"rise": {}}, {}, ValueError, "at least one"),
    (BLOCKS, {}, {}, ValueError, "at least one"),
    (BLOCKS, {"rise": [1.0]}, {}, TypeError, r"similarity\['rise'\]"),
    (BLOCKS, make_similarity(), {"rise": 0.3}, TypeError, r"baseline\['rise'\]"),
    (BLOCKS, make_similarity(), [0.3], TypeError, "baseline"),
])
def test_bad_inputs_are_rejected(tmp_path, blocks, similarity, baseline, error, pattern):
  with pytest.raises(error, match=pattern):
    sanity_figure(tmp_path / "sanity.png", blocks, similarity, baseline)
  assert not list(tmp_path.iterdir())
