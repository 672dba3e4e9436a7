"""The cascading-randomisation strip of the sanity check (Adebayo et al., NeurIPS 2018).

One panel per similarity measure (Spearman, Spearman of absolute values,
SSIM, HOG, then any other, in order of first appearance). The x axis lists
the randomised blocks in cascade order (from the logits down); the y axis is
the similarity between the maps of the model randomised up to that block and
the trained model's maps: per method the mean over images (solid line) with a
shaded +-1 standard deviation band, and a dotted line of the same colour at
the method's baseline, the similarity of trained-model maps of different
images. A method that explains the model falls below its baseline. NaN
similarities (undefined for an image) are left out of the mean.

    check = metrics.sanity_check(...)
    sanity_figure(report_dir / "sanity.png", check.block_names,
                  {"gradcam": check.similarity},
                  {"gradcam": {name: float(b.mean()) for name, b in check.baseline.items()}})
"""

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from salijax.report import plotting

MEASURE_TITLES = {"spearman": "Spearman rank correlation",
                  "spearman_abs": "Spearman of |map|",
                  "ssim": "SSIM",
                  "hog": "HOG correlation"}
PANEL_INCHES = 4.0


def _finite_mean_std(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """f[num_blocks, n] -> mean and standard deviation over the non-NaN values of each row."""
  present = ~np.isnan(values)
  count = present.sum(axis=1)
  filled = np.where(present, values, 0.0)
  mean = np.divide(filled.sum(axis=1), count, out=np.full(count.shape, np.nan),
                   where=count > 0)
  squares = np.where(present, (values - mean[:, None]) ** 2, 0.0).sum(axis=1)
  std = np.sqrt(np.divide(squares, count, out=np.full(count.shape, np.nan), where=count > 0))
  return mean, std


def _checked(block_names: Any, similarity: Any,
             baseline: Any) -> dict[str, dict[str, np.ndarray]]:
  """similarity as f64 arrays [num_blocks, n], or ValueError/TypeError naming what is wrong."""
  if isinstance(block_names, str) or not isinstance(block_names, Sequence) or not block_names:
    raise ValueError(f"block_names must be a non-empty sequence of block names, got"
                     f" {block_names!r}")
  if not isinstance(similarity, Mapping) or not isinstance(baseline, Mapping):
    raise TypeError("similarity and baseline must be mappings method -> measure -> values")
  checked = {}
  for method, measures in similarity.items():
    if not isinstance(measures, Mapping):
      raise TypeError(f"similarity[{method!r}] must be a mapping measure -> f32[num_blocks, n],"
                      f" got {type(measures).__name__}")
    checked[str(method)] = {}
    for measure, values in measures.items():
      values = np.asarray(values, np.float64)
      if values.ndim != 2 or values.shape[0] != len(block_names) or values.shape[1] < 1:
        raise ValueError(f"similarity[{method!r}][{measure!r}] must have shape [num_blocks, n]"
                         f" = [{len(block_names)}, n >= 1], got {values.shape}")
      checked[str(method)][str(measure)] = values
  for method, measures in baseline.items():
    if not isinstance(measures, Mapping):
      raise TypeError(f"baseline[{method!r}] must be a mapping measure -> number, got"
                      f" {type(measures).__name__}")
  if not any(checked.values()):
    raise ValueError("similarity must hold at least one method with one measure")
  return checked


def sanity_figure(path: str | os.PathLike, block_names: Sequence[str],
                  similarity: Mapping[str, Mapping[str, Any]],
                  baseline: Mapping[str, Mapping[str, float]], *, title: str = "") -> None:
  """Draws the strip (module doc) and saves it as a PNG at `path`.

  Args:
    path: the .png file.
    block_names: the randomised blocks in cascade order (num_blocks names).
    similarity: method -> measure -> f32[num_blocks, n], the similarity of
      each image's randomised map to its trained one; a method may lack
      measures.
    baseline: method -> measure -> the baseline similarity (a number, or an
      array whose non-NaN mean is taken); missing entries draw no line.
    title: the figure's title; "" for none.

  Raises:
    ValueError: empty block_names; no method with a measure; a similarity not
      [num_blocks, n] (method and measure named).
    TypeError: similarity, baseline or their entries not mappings.
  """
  checked = _checked(block_names, similarity, baseline)
  present = list(dict.fromkeys(measure for measures in checked.values() for measure in measures))
  measures = ([measure for measure in MEASURE_TITLES if measure in present]
              + [measure for measure in present if measure not in MEASURE_TITLES])
  plt = plotting.pyplot()
  from matplotlib.lines import Line2D  # noqa: PLC0415 - after pyplot selected the backend.

  label_length = max(len(str(name)) for name in block_names)
  figure, axes = plt.subplots(
      1, len(measures), squeeze=False, layout="constrained",
      figsize=(PANEL_INCHES * len(measures) + 1.8, 3.6 + 0.08 * label_length))
  colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  x = np.arange(len(block_names))
  for ax, measure in zip(axes[0], measures, strict=True):
    for index, (method, method_values) in enumerate(checked.items()):
      if measure not in method_values:
        continue
      color = colors[index % len(colors)]
      mean, std = _finite_mean_std(method_values[measure])
      ax.plot(x, mean, marker="o", markersize=4, color=color, linewidth=1.8)
      ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.15, linewidth=0)
      method_baseline = baseline.get(method, {})
      if measure in method_baseline:
        level = np.asarray(method_baseline[measure], np.float64)
        if np.isfinite(level).any():
          ax.axhline(float(np.nanmean(level)), color=color, linestyle=":", linewidth=1.5)
    ax.set_title(MEASURE_TITLES.get(measure, measure), fontsize=11)
    ax.set_xticks(x, [str(name) for name in block_names], rotation=60, ha="right",
                  rotation_mode="anchor", fontsize=8)
    ax.set_xlabel("randomised up to block (cascade)")
    ax.grid(alpha=0.3)
  axes[0, 0].set_ylabel("similarity to the trained model's maps")
  handles = [Line2D([], [], color=colors[index % len(colors)], marker="o", markersize=4,
                    linewidth=1.8, label=method) for index, method in enumerate(checked)]
  handles.append(Line2D([], [], color="0.3", linestyle=":", linewidth=1.5,
                        label="baseline: different images"))
  handles.append(Line2D([], [], color="0.3", alpha=0.3, linewidth=6, label="±1 std over images"))
  figure.legend(handles=handles, loc="outside right upper", fontsize=8)
  if title:
    figure.suptitle(title, fontsize=12)
  plotting.save_figure(figure, path)
