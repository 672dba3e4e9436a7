"""Tests of explanation_panel's `explained`: each map's class written under it, and its checks."""

import numpy as np
import pytest

from salijax.report import plotting
from salijax.report.explanation_panel import PanelColumn, explanation_panel

RNG = np.random.default_rng(1)
ROWS = ("top-1: gradcam", "top-2: gradcam")


def column(explained, class_model=None):
  image = RNG.uniform(size=(16, 16, 3)).astype(np.float32)
  maps = {row: RNG.normal(size=(16, 16)).astype(np.float32) for row in ROWS}
  return PanelColumn("m", image, [("tabby", 0.6), ("tiger cat", 0.3)], maps,
                     class_model=class_model, explained=explained)


def drawn_labels(monkeypatch, tmp_path, columns):
  """[[(x label, y label) of each cell, top to bottom] per column] of the saved figure."""
  figures = []
  save = plotting.save_figure
  monkeypatch.setattr(plotting, "save_figure",
                      lambda figure, path: (figures.append(figure), save(figure, path)))
  explanation_panel(tmp_path / "panel.png", columns, title="cat.jpg")
  (figure,) = figures
  cells = [ax for ax in figure.axes if ax.images]  # not the colorbar
  rows = len(cells) // len(columns)
  grid = np.array(cells, dtype=object).reshape(rows, len(columns))
  return [[(ax.get_xlabel(), ax.get_ylabel()) for ax in grid[:, col]]
          for col in range(len(columns))]


def test_each_map_shows_its_class_and_the_class_model_the_first(monkeypatch, tmp_path):
  explained = {"top-1: gradcam": "tabby (60.0 %)", "top-2: gradcam": "tiger cat (30.0 %)"}
  (cells,) = drawn_labels(monkeypatch, tmp_path,
                          [column(explained, np.full((8, 8, 3), 0.5, np.float32))])
  assert cells[1] == ("tabby (60.0 %)", "class model\nof the explained class")
  assert cells[2:] == [(explained[row], row) for row in ROWS]


def test_without_explained_the_maps_are_unlabelled(monkeypatch, tmp_path):
  (cells,) = drawn_labels(monkeypatch, tmp_path,
                          [column(None, np.full((8, 8, 3), 0.5, np.float32))])
  assert cells[1] == ("tabby", "class model\nof the top-1")
  assert cells[2:] == [("", row) for row in ROWS]


@pytest.mark.parametrize("explained", [{"top-1: gradcam": "tabby"}, ["tabby", "tiger cat"],
                                       {"top-2: gradcam": "a", "top-1: gradcam": "b"}])
def test_explained_must_name_each_map_in_order(tmp_path, explained):
  with pytest.raises(ValueError, match=r"columns\[0\].explained must name the class of each"
                     r" map, in the order of its maps \['top-1: gradcam', 'top-2: gradcam'\]"):
    explanation_panel(tmp_path / "bad.png", [column(explained)], title="")
  assert not (tmp_path / "bad.png").exists()
