"""The insertion and deletion curves of each method, averaged over images, with their AUCs.

Two panels, insertion (left: higher is better) and deletion (right: lower is
better). A method's T-point curves lie at the pixel fractions linspace(0, 1, T)
(`salijax.metrics.insertion_deletion`: T = n + 1 steps); each panel draws the
mean curve over images per method, with the area under it in the legend,
"gradcam (AUC 0.612)". That area, by the trapezoid rule, equals the mean of the
per-image AUCs of results.csv (the rule is linear). Controls are drawn last,
grey and dashed.

    insertion_deletion_figure(report_dir / "curves.png",
                              {"gradcam": (result.insertion_curve, result.deletion_curve)})
"""

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from salijax.report import plotting

CONTROL_STYLES = (("0.35", "--"), ("0.6", ":"), ("0.45", "-."))  # (grey level, line style)


def area_under_curve(curve: np.ndarray) -> float:
  """f[T] on linspace(0, 1, T) -> the trapezoid area (sum y_t - y_0 / 2 - y_last / 2) / (T - 1)."""
  return float((curve.sum() - (curve[0] + curve[-1]) / 2.0) / (curve.size - 1))


def _checked_curves(curves: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """The curves as f64 arrays, or ValueError/TypeError naming the method."""
  if not isinstance(curves, Mapping) or not curves:
    raise ValueError(f"curves must be a non-empty mapping method -> (insertion f32[N,T],"
                     f" deletion f32[N,T]), got {curves!r:.80}")
  checked = {}
  for method, pair in curves.items():
    try:
      insertion, deletion = (np.asarray(curve, np.float64) for curve in pair)
    except (TypeError, ValueError) as error:
      raise ValueError(f"curves[{method!r}] must be a pair (insertion f32[N,T], deletion"
                       f" f32[N,T]), got {type(pair).__name__}") from error
    if insertion.ndim != 2 or insertion.shape[0] < 1 or insertion.shape[1] < 2:
      raise ValueError(f"curves[{method!r}] insertion must have shape [N, T] with N >= 1 and"
                       f" T >= 2, got {insertion.shape}")
    if deletion.shape != insertion.shape:
      raise ValueError(f"curves[{method!r}] deletion must have the insertion's shape"
                       f" {insertion.shape}, got {deletion.shape}")
    if not (np.isfinite(insertion).all() and np.isfinite(deletion).all()):
      raise ValueError(f"curves[{method!r}] must be finite")
    checked[str(method)] = (insertion, deletion)
  return checked


def insertion_deletion_figure(path: str | os.PathLike,
                              curves: Mapping[str, tuple[Any, Any]], *, title: str = "",
                              controls: Sequence[str] = ("fake_cam", "random")) -> None:
  """Draws the two panels (module doc) and saves them as a PNG at `path`.

  Args:
    path: the .png file.
    curves: method -> (insertion f32[N,T], deletion f32[N,T]), N images, T
      points at pixel fractions linspace(0, 1, T); T may differ between methods.
    title: the figure's title; "" for none.
    controls: the methods drawn as controls (grey, dashed), after the others.

  Raises:
    ValueError: empty curves, curves not [N, T] (N >= 1, T >= 2), a deletion
      curve of another shape than its insertion curve, non-finite values (the
      method is named).
  """
  checked = _checked_curves(curves)
  order = ([method for method in checked if method not in controls]
           + [method for method in controls if method in checked])
  plt = plotting.pyplot()
  figure, axes = plt.subplots(1, 2, figsize=(10.0, 4.2 + (0.3 if title else 0.0)),
                              sharey=True, layout="constrained")
  colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  panels = (("insertion", "fraction of pixels inserted"),
            ("deletion", "fraction of pixels deleted"))
  for panel, (ax, (name, xlabel)) in enumerate(zip(axes, panels, strict=True)):
    ranked = shown_controls = 0
    for method in order:
      mean_curve = checked[method][panel].mean(axis=0)
      if method in controls:
        grey, dashes = CONTROL_STYLES[shown_controls % len(CONTROL_STYLES)]
        style = {"color": grey, "linestyle": dashes, "linewidth": 1.5}
        shown_controls += 1
      else:
        style = {"color": colors[ranked % len(colors)], "linewidth": 2.0}
        ranked += 1
      x = np.linspace(0.0, 1.0, mean_curve.size)
      ax.plot(x, mean_curve, label=f"{method} (AUC {area_under_curve(mean_curve):.3f})", **style)
    ax.set_title(f"{name} ({'higher' if panel == 0 else 'lower'} AUC is better)", fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_xlim(0.0, 1.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best", framealpha=0.85)
  axes[0].set_ylabel("class probability")
  if title:
    figure.suptitle(title, fontsize=12)
  plotting.save_figure(figure, path)


def mean_curve_figure(path: str | os.PathLike, curves: Mapping[str, Any], *, title: str = "",
                      ylabel: str = "", higher_is_better: bool | None = None,
                      controls: Sequence[str] = ("fake_cam", "random")) -> None:
  """One panel: each method's curve averaged over images (NaN values left out), against
  the step 0..T-1; controls last, grey and dashed. Saved as a PNG at `path`.

  Args:
    path: the .png file.
    curves: method -> f32[N,T], N >= 1 images, T >= 2 steps (T may differ between methods).
    title: the figure's title; "" for none.
    ylabel: the y axis label.
    higher_is_better: the direction of a better curve, said in the panel's title (None:
      nothing said).
    controls: the methods drawn as controls (grey, dashed), after the others.

  Raises:
    ValueError: empty curves, curves not [N, T] (N >= 1, T >= 2), or a method without any
      finite value (the method is named).
  """
  if not isinstance(curves, Mapping) or not curves:
    raise ValueError(f"curves must be a non-empty mapping method -> f32[N,T], got"
                     f" {curves!r:.80}")
  checked = {}
  for method, curve in curves.items():
    array = np.asarray(curve, np.float64)
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 2:
      raise ValueError(f"curves[{method!r}] must have shape [N, T] with N >= 1 and T >= 2,"
                       f" got {array.shape}")
    if not np.isfinite(array).any(axis=0).all():
      raise ValueError(f"curves[{method!r}] has a step without any finite value")
    checked[str(method)] = np.nanmean(np.where(np.isfinite(array), array, np.nan), axis=0)
  order = ([method for method in checked if method not in controls]
           + [method for method in controls if method in checked])
  plt = plotting.pyplot()
  figure, ax = plt.subplots(1, 1, figsize=(6.0, 4.2 + (0.3 if title else 0.0)),
                            layout="constrained")
  colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  ranked = shown_controls = 0
  for method in order:
    if method in controls:
      grey, dashes = CONTROL_STYLES[shown_controls % len(CONTROL_STYLES)]
      style = {"color": grey, "linestyle": dashes, "linewidth": 1.5}
      shown_controls += 1
    else:
      style = {"color": colors[ranked % len(colors)], "linewidth": 2.0}
      ranked += 1
    ax.plot(np.arange(checked[method].size), checked[method], label=method, **style)
  if higher_is_better is not None:
    ax.set_title(f"mean over images ({'higher' if higher_is_better else 'lower'} is better)",
                 fontsize=11)
  ax.set_xlabel("step")
  ax.set_ylabel(ylabel)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8, loc="best", framealpha=0.85)
  if title:
    figure.suptitle(title, fontsize=12)
  plotting.save_figure(figure, path)
