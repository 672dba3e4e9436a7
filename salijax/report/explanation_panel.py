"""The explanations of one image by several models, side by side, as one PNG.

One column per model. The first row shows the image as the model saw it
(preprocessed) with the model's top-k classes and probabilities under it; then,
if the columns have one, the model's class model of its explained class (the image
that class's logit likes best, `salijax.visualisation.class_model`); then one
row per map (a method, or a method and a class rank: the columns' `maps` keys),
the map of the explained class over the image. The explained class is the
top-1 unless a column names its maps' classes (`explained`), written under each
map (and under the class model: the first one's).
Each map is min-max normalised over its own image (`salijax.report.overlay_grid.normalized_map`;
a constant map ranks nothing, shows as all low and is marked "constant map") and
drawn through `cmap` with opacity `alpha`; a colorbar states the colormap's
reading ("jet: low → high saliency").

    explanation_panel("out/cat.png", [
        PanelColumn("resnet18 (ImageNet)", image, [("tabby", 0.61), ("tiger cat", 0.2)],
                    {"gradcam": gradcam_map, "rise": rise_map}),
        PanelColumn("vgg11 (ImageNet)", ...)], title="cat.jpg")
"""

import dataclasses
import os
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from salijax.report import plotting
from salijax.report.overlay_grid import normalized_map

CELL_INCHES = 2.2  # width and height of one image in the figure
LABEL_CHARS = 30  # class and model names are shortened to this many characters


@dataclasses.dataclass(frozen=True)
class PanelColumn:
  """One model's column of the panel."""

  model: str  # the model's display name, the column title
  image: Any  # f32[h,w,3] in [0, 1], the image as the model saw it
  top_k: Sequence[tuple[str, float]]  # (class name, probability), most probable first
  maps: Mapping[str, Any]  # row label (a method) -> f32[h,w], a class's map, larger = more salient
  class_model: Any = None  # f32[h',w',3] in [0, 1], the explained class's class model, or None
  explained: Mapping[str, str] | None = None  # row label -> its map's class; None: the top-1


def _check_picture(picture: Any, name: str) -> None:
  picture = np.asarray(picture)
  if picture.ndim != 3 or picture.shape[-1] != 3:
    raise ValueError(f"{name} must have shape [h, w, 3], got {picture.shape}")
  if not np.isfinite(picture).all() or picture.min() < 0 or picture.max() > 1:
    raise ValueError(f"{name} must hold finite values in [0, 1]")


def _check_column(index: int, column: Any, methods: tuple[str, ...],
                  with_class_model: bool) -> None:
  if not isinstance(column, PanelColumn):
    raise TypeError(f"columns[{index}] must be a PanelColumn, got {type(column).__name__}")
  _check_picture(column.image, f"columns[{index}].image")
  image = np.asarray(column.image)
  if (column.class_model is not None) != with_class_model:
    raise ValueError(f"columns[{index}].class_model must be given in every column or in"
                     f" none, like columns[0] ({'given' if with_class_model else 'None'})")
  if with_class_model:
    _check_picture(column.class_model, f"columns[{index}].class_model")
  if tuple(column.maps) != methods:
    raise ValueError(f"columns[{index}].maps must explain the methods of columns[0] in the"
                     f" same order, {list(methods)}, got {list(column.maps)}")
  for method, saliency in column.maps.items():
    shape = np.shape(saliency)
    if shape != image.shape[:2]:
      raise ValueError(f"columns[{index}].maps[{method!r}] must have shape {image.shape[:2]}"
                       f" like the image, got {shape}")
    if not np.isfinite(saliency).all():
      raise ValueError(f"columns[{index}].maps[{method!r}] has non-finite values")
  if column.explained is not None and (not isinstance(column.explained, Mapping)
                                       or tuple(column.explained) != methods):
    raise ValueError(f"columns[{index}].explained must name the class of each map, in the"
                     f" order of its maps {list(methods)}, got {column.explained!r}")


def _top_k_text(top_k: Sequence[tuple[str, float]]) -> str:
  return "\n".join(f"{rank}. {textwrap.shorten(str(name), LABEL_CHARS, placeholder='…')}"
                   f"  {100 * float(probability):.1f} %"
                   for rank, (name, probability) in enumerate(top_k, start=1))


def explanation_panel(path: str | os.PathLike, columns: Sequence[PanelColumn], *, title: str,
                      cmap: str = "jet", alpha: float = 0.5) -> None:
  """Draws the panel (module doc) and saves it as a PNG at `path`.

  Args:
    path: the .png file.
    columns: one PanelColumn per model; every column has the same methods in
      the same order (the rows).
    title: the figure's title (e.g. the image file's name).
    cmap: a matplotlib colormap name.
    alpha: the maps' opacity, in [0, 1].

  Raises:
    ValueError: no columns; an image or class model not [h, w, 3] in [0, 1]; a
      map not [h, w] like its image or non-finite; columns with different
      rows, or a class model in some columns only; `explained` with other keys
      than its maps; an unknown cmap; alpha outside [0, 1].
    TypeError: a column that is not a PanelColumn.
  """
  if isinstance(columns, PanelColumn) or not columns:
    raise ValueError(f"columns must be a non-empty sequence of PanelColumn, got {columns!r}")
  methods = tuple(getattr(columns[0], "maps", {}))
  with_class_model = getattr(columns[0], "class_model", None) is not None
  for index, column in enumerate(columns):
    _check_column(index, column, methods, with_class_model)
  if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
    raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
  plt = plotting.pyplot()
  if cmap not in plt.colormaps():
    raise ValueError(f"cmap must be a matplotlib colormap name, got {cmap!r}")

  first_map_row = 2 if with_class_model else 1
  rows = first_map_row + len(methods)
  top_k_inches = 0.2 * max(len(column.top_k) for column in columns)
  figure, axes = plt.subplots(
      rows, len(columns), squeeze=False, layout="constrained",
      figsize=(len(columns) * CELL_INCHES + 0.6, rows * CELL_INCHES + top_k_inches + 1.0))
  for col, column in enumerate(columns):
    image = np.asarray(column.image, np.float64)
    top = axes[0, col]
    top.imshow(image, interpolation="nearest")
    top.set_title(textwrap.shorten(column.model, LABEL_CHARS, placeholder="…"), fontsize=10)
    top.set_xlabel(_top_k_text(column.top_k), fontsize=8, loc="left")
    explained = column.explained
    if with_class_model:
      axes[1, col].imshow(np.asarray(column.class_model, np.float64), interpolation="nearest")
      of = next(iter(explained.values()), None) if explained else None
      if of is None and column.top_k:
        of = column.top_k[0][0]
      if of is not None:
        axes[1, col].set_xlabel(textwrap.shorten(str(of), LABEL_CHARS, placeholder="…"),
                                fontsize=8)
      if col == 0:
        axes[1, col].set_ylabel("class model\nof the " + ("explained class" if explained
                                                          else "top-1"), fontsize=10)
    for row, (method, saliency) in enumerate(column.maps.items(), start=first_map_row):
      ax = axes[row, col]
      normalized = normalized_map(saliency)
      ax.imshow(image, interpolation="nearest")
      ax.imshow(normalized, cmap=cmap, alpha=alpha, vmin=0.0, vmax=1.0,
                interpolation="nearest")
      if not normalized.any():
        ax.text(0.5, 0.5, "constant map", transform=ax.transAxes, ha="center",
                va="center", fontsize=8, color="white", backgroundcolor="black")
      if explained:
        ax.set_xlabel(textwrap.shorten(str(explained[method]), LABEL_CHARS, placeholder="…"),
                      fontsize=8)
      if col == 0:
        ax.set_ylabel(method, fontsize=10)
  for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
      spine.set_visible(False)
  if methods:
    scale = plt.cm.ScalarMappable(norm=plt.Normalize(0.0, 1.0), cmap=cmap)
    colorbar = figure.colorbar(scale, ax=axes[first_map_row:], location="bottom", shrink=0.8,
                               aspect=12 * len(columns))
    colorbar.set_ticks([0.0, 1.0], labels=["low", "high"])
    colorbar.set_label(f"{cmap}: low → high saliency (min-max per map)", fontsize=9)
  figure.suptitle(title, fontsize=11)
  plotting.save_figure(figure, path)
