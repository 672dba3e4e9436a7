"""A grid of saliency maps over their images: rows = images, columns = the image, then methods.

Each map is min-max normalised over its own image (a constant map, which
ranks nothing, shows as all low) and drawn over the image through `cmap` with
opacity `alpha`; one colorbar under the grid states the colormap's reading ("jet: low → high
saliency"). Column titles name the methods; `row_labels` (e.g. "true: star /
pred: star") go left of each row.

    overlay_grid(report_dir / "overlays.png", images[:4],
                 {"gradcam": gradcam_maps[:4], "rise": rise_maps[:4]},
                 row_labels=["true: star / pred: star", ...])
"""

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from salijax import validation
from salijax.report import plotting

CELL_INCHES = 1.7  # width and height of one image in the figure
COLORBAR_INCHES = 0.7  # the horizontal colorbar under the grid, with its label


def normalized_map(saliency: np.ndarray) -> np.ndarray:
  """f[H,W] -> f64[H,W] in [0, 1], (L - min L) / (max L - min L); a constant map -> zeros."""
  saliency = np.asarray(saliency, np.float64)
  low, span = saliency.min(), np.ptp(saliency)
  return (saliency - low) / span if span > 0 else np.zeros_like(saliency)


def checked_grid(images: Any, maps: Mapping[str, Any], row_labels: Sequence[str] | None,
                 cmap: str, alpha: float) -> tuple[np.ndarray, Any]:
  """The checks of a grid of images (rows) x maps (columns) (`overlay_grid`'s Raises);
  returns (the images as f64[k,H,W,3], matplotlib's pyplot)."""
  validation.check_images(images)
  images = np.asarray(images, np.float64)
  if not isinstance(maps, Mapping):
    raise TypeError(f"maps must be a mapping method -> f32[k,H,W], got {type(maps).__name__}")
  for method, method_maps in maps.items():
    validation.check_map_batch(method_maps, name=f"maps[{method!r}]")
    if tuple(method_maps.shape) != images.shape[:3]:
      raise ValueError(f"maps[{method!r}] must have shape [k, H, W] = {images.shape[:3]} like"
                       f" the images, got {tuple(method_maps.shape)}")
  count = images.shape[0]
  if row_labels is not None and (isinstance(row_labels, str) or len(row_labels) != count):
    raise ValueError(f"row_labels must hold {count} labels (one per image), got {row_labels!r}")
  if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
    raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
  plt = plotting.pyplot()
  if cmap not in plt.colormaps():
    raise ValueError(f"cmap must be a matplotlib colormap name, got {cmap!r}")
  return images, plt


def overlay_grid(path: str | os.PathLike, images: Any, maps: Mapping[str, Any], *,
                 row_labels: Sequence[str] | None = None, cmap: str = "jet", alpha: float = 0.5,
                 title: str = "") -> None:
  """Draws the grid (module doc) and saves it as a PNG at `path`.

  Args:
    path: the .png file.
    images: f32[k,H,W,3] in [0, 1].
    maps: method -> f32[k,H,W] of the same images, larger = more salient; the
      columns follow its order.
    row_labels: k labels, one per image; None for none.
    cmap: a matplotlib colormap name.
    alpha: the maps' opacity, in [0, 1].
    title: the figure's title; "" for none.

  Raises:
    ValueError: images not [k,H,W,3] in [0, 1]; a map of another shape or with
      non-finite values (the method is named); row_labels not k; an unknown
      cmap; alpha outside [0, 1].
    TypeError: non-array images or maps, maps not a mapping.
  """
  images, plt = checked_grid(images, maps, row_labels, cmap, alpha)
  count, columns = images.shape[0], 1 + len(maps)
  height = count * CELL_INCHES + (0.4 if title else 0.0) + 0.3 + COLORBAR_INCHES
  figure, axes = plt.subplots(count, columns, squeeze=False, layout="constrained",
                              figsize=(columns * CELL_INCHES, height))
  for row in range(count):
    image = np.clip(images[row], 0.0, 1.0)
    axes[row, 0].imshow(image, interpolation="nearest")
    for column, method_maps in enumerate(maps.values(), start=1):
      axes[row, column].imshow(image, interpolation="nearest")
      axes[row, column].imshow(normalized_map(method_maps[row]), cmap=cmap, alpha=alpha,
                               vmin=0.0, vmax=1.0, interpolation="nearest")
    if row_labels is not None:
      axes[row, 0].set_ylabel(str(row_labels[row]), fontsize=9)
  for column, name in enumerate(["image", *maps]):
    axes[0, column].set_title(str(name), fontsize=10)
  for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
      spine.set_visible(False)
  scale = plt.cm.ScalarMappable(norm=plt.Normalize(0.0, 1.0), cmap=cmap)
  colorbar = figure.colorbar(scale, ax=axes, location="bottom", shrink=min(1.0, 3.0 / columns),
                             aspect=25, pad=0.02)
  colorbar.set_ticks([0.0, 1.0], labels=["low", "high"])
  colorbar.set_label(f"{cmap}: low → high saliency (min-max normalised per map)", fontsize=9)
  if title:
    figure.suptitle(title, fontsize=12)
  plotting.save_figure(figure, path)
