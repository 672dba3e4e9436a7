"""The pointing game drawn: each map's maximum marked against the object region, hit or miss.

Rows = images, columns = methods. Each panel shows the image with the map
over it (min-max normalised, `cmap`, as in `overlay_grid`), the object
region's outline (solid white), the outline of the pixels within `tolerance`
of the region (dashed white: where a maximum hits), and the map's maximum:
of the pixels equal to the maximum, the one nearest the region (the one that
decides the game under its tie rule). A hit is a green circle with the label
"hit", a miss a red cross with "miss" and its distance in pixels; a tie adds
"(n maxima)". The verdicts are `salijax.metrics.pointing_game`'s, on the same
maps, region and tolerance. Column titles give each method's hits out of the
images.

    marks = pointing_figure(report_dir / "pointing.png", images, {"gradcam": maps}, masks,
                            tolerance=15.0)
    marks["gradcam"].hit   # bool[k], as metrics.pointing_game(maps, masks).hit
"""

import os
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from salijax.metrics.pointing_game import (
    DEFAULT_TOLERANCE,
    pointing_game,
    region_masks,
    squared_distance_to_region,
)
from salijax.report import plotting
from salijax.report.overlay_grid import checked_grid, normalized_map

CELL_INCHES = 1.9  # width and height of one panel
HIT_COLOR = "#1a9850"
MISS_COLOR = "#d73027"


class PointingMarks(NamedTuple):
  """What one method's column shows, per image."""

  hit: np.ndarray  # bool[k], metrics.pointing_game's verdict
  distance: np.ndarray  # f32[k], px from the marked maximum to the region (0 inside)
  num_maxima: np.ndarray  # i32[k], pixels that share the maximum
  row: np.ndarray  # i32[k], the marked maximum's row
  col: np.ndarray  # i32[k], and column


def label_text(hit: bool, distance: float, num_maxima: int) -> str:
  """A panel's verdict: "hit" or "miss, 21 px", with " (3 maxima)" for a tie."""
  text = "hit" if hit else f"miss, {distance:.3g} px"
  return text if num_maxima == 1 else f"{text} ({num_maxima} maxima)"


def pointing_marks(maps: Any, masks: np.ndarray, tolerance: float) -> PointingMarks:
  """The pointing game of f32[k,H,W] maps on bool[k,H,W] regions, with each map's marked
  maximum (the maximal pixel nearest the region; the first in raster order among equals)."""
  result = pointing_game(maps, masks, tolerance=tolerance)
  values = np.asarray(maps, np.float32)
  distance_sq = np.asarray(squared_distance_to_region(masks), np.int64)
  maximal = values == values.max(axis=(1, 2), keepdims=True)
  nearest = np.where(maximal, distance_sq, np.iinfo(np.int64).max).reshape(len(values), -1)
  row, col = np.unravel_index(nearest.argmin(axis=1), values.shape[1:])
  return PointingMarks(np.asarray(result.hit), np.asarray(result.distance),
                       np.asarray(result.num_maxima), row.astype(np.int32), col.astype(np.int32))


def pointing_figure(path: str | os.PathLike, images: Any, maps: Mapping[str, Any], region: Any,
                    *, tolerance: float = DEFAULT_TOLERANCE,
                    row_labels: Sequence[str] | None = None, cmap: str = "jet",
                    alpha: float = 0.5, title: str = "") -> dict[str, PointingMarks]:
  """Draws the figure (module doc), saves it as a PNG at `path` and returns what it marks.

  Args:
    path: the .png file.
    images: f32[k,H,W,3] in [0, 1].
    maps: method -> f32[k,H,W] of the same images, larger = more salient; the
      columns follow its order.
    region: the objects, masks bool[k,H,W] or boxes f32[k,4] (ymin, xmin,
      ymax, xmax) in [0, 1] (`salijax.metrics.pointing_game`).
    tolerance: the largest hitting distance in pixels (>= 0).
    row_labels: k labels, one per image; None for none.
    cmap: a matplotlib colormap name.
    alpha: the maps' opacity, in [0, 1].
    title: the figure's title; "" for none.

  Returns:
    {method: PointingMarks}, in the order of `maps`.

  Raises:
    ValueError: images not [k,H,W,3] in [0, 1]; no map, or a map of another
      shape or with non-finite values (the method is named); a region of the
      wrong shape or empty; a bad tolerance; row_labels not k; an unknown
      cmap; alpha outside [0, 1].
    TypeError: non-array images, maps or region, maps not a mapping.
  """
  if isinstance(maps, Mapping) and not maps:
    raise ValueError("maps must hold at least one method")
  images, plt = checked_grid(images, maps, row_labels, cmap, alpha)
  count = images.shape[0]
  masks = np.asarray(region_masks(region, images.shape[:3]))
  marks = {str(method): pointing_marks(method_maps, masks, tolerance)
           for method, method_maps in maps.items()}
  hitting_zone = np.sqrt(np.asarray(squared_distance_to_region(masks),
                                    np.float64)) <= tolerance
  from matplotlib.lines import Line2D  # noqa: PLC0415 - after pyplot selected the backend.

  columns = len(maps)
  figure, axes = plt.subplots(
      count, columns, squeeze=False, layout="constrained",
      figsize=(columns * CELL_INCHES + 0.4, count * CELL_INCHES + (0.4 if title else 0) + 0.5))
  for column, (method, method_maps) in enumerate(maps.items()):
    mine = marks[str(method)]
    for row in range(count):
      ax = axes[row, column]
      ax.imshow(np.clip(images[row], 0.0, 1.0), interpolation="nearest")
      ax.imshow(normalized_map(method_maps[row]), cmap=cmap, alpha=alpha, vmin=0.0, vmax=1.0,
                interpolation="nearest")
      for outline, style in ((masks[row], "solid"), (hitting_zone[row], "dashed")):
        if 0 < outline.sum() < outline.size:
          ax.contour(outline.astype(np.float64), levels=[0.5], colors="white",
                     linewidths=1.0, linestyles=style)
      hit = bool(mine.hit[row])
      color = HIT_COLOR if hit else MISS_COLOR
      ax.plot(mine.col[row], mine.row[row], marker="o" if hit else "X", markersize=9,
              markerfacecolor=color, markeredgecolor="white", markeredgewidth=1.2,
              linestyle="none", clip_on=False)  # whole at the image's edge
      # The label goes in the top left corner, or the bottom left one when the mark is there.
      top = not (mine.row[row] < images.shape[1] / 3 and mine.col[row] < images.shape[2] / 2)
      ax.text(0.03, 0.97 if top else 0.03,
              label_text(hit, float(mine.distance[row]), int(mine.num_maxima[row])),
              transform=ax.transAxes, ha="left", va="top" if top else "bottom", fontsize=8,
              color="white",
              bbox={"facecolor": color, "edgecolor": "none", "pad": 1.5, "alpha": 0.9})
      ax.set_xticks([])
      ax.set_yticks([])
      if column == 0 and row_labels is not None:
        ax.set_ylabel(str(row_labels[row]), fontsize=9)
    axes[0, column].set_title(f"{method}: {int(mine.hit.sum())}/{count} hits", fontsize=10)
  handles = [
      Line2D([], [], marker="o", color=HIT_COLOR, markeredgecolor="white", linestyle="none",
             markersize=8, label="maximum: hit"),
      Line2D([], [], marker="X", color=MISS_COLOR, markeredgecolor="white", linestyle="none",
             markersize=8, label="maximum: miss"),
      Line2D([], [], color="0.4", linewidth=1.0, label="object region"),
      Line2D([], [], color="0.4", linewidth=1.0, linestyle="--",
             label=f"within {tolerance:g} px (hits)")]
  figure.legend(handles=handles, loc="outside lower center", ncols=4, fontsize=8)
  if title:
    figure.suptitle(title, fontsize=12)
  plotting.save_figure(figure, path)
  return marks
