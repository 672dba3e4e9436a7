"""A search method's convergence beside every method's cost.

Two panels. Left: the search's objective at each step (the mask search's
target probability p_t, `salijax.methods.mask_search_with_objective`), one
faint line per image and their mean in bold. Right: what one map cost each
method, the benchmark's measured wall time per image (a bar, log scale) with
the model passes per image that the method's registry entry counts written
beside it ("5000 forward passes", "1 gradient pass"). Controls are drawn grey.

    convergence_figure(report_dir / "resnet18_scratch_mask_search.png", objective,
                       {"mask_search": MethodCost(2.1, "forward", 5000),
                        "gradcam": MethodCost(0.004, "gradient", 1)})
"""

import os
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from salijax.report import plotting


class MethodCost(NamedTuple):
  """One method's cost per explained image."""

  seconds: float  # measured wall time per image
  kind: str | None  # the pass counted: "forward", "gradient", or None (no pass)
  passes: int  # passes of the model per image


def _checked(objective: Any, costs: Any) -> tuple[np.ndarray, dict[str, MethodCost]]:
  """The objective as f64[N,T] and the costs, or ValueError naming the argument."""
  values = np.asarray(objective, np.float64)
  if values.ndim != 2 or min(values.shape) < 1 or not np.isfinite(values).all():
    raise ValueError(f"objective must be finite with shape [N, T] (N images, T steps >= 1),"
                     f" got shape {values.shape}")
  if not isinstance(costs, Mapping) or not costs:
    raise ValueError(f"costs must be a non-empty mapping method -> MethodCost, got"
                     f" {costs!r:.80}")
  checked = {}
  for method, cost in costs.items():
    if not isinstance(cost, MethodCost) or not (np.isfinite(cost.seconds)
                                                and cost.seconds >= 0):
      raise ValueError(f"costs[{method!r}] must be a MethodCost with seconds >= 0, got"
                       f" {cost!r}")
    checked[str(method)] = cost
  return values, checked


def convergence_figure(path: str | os.PathLike, objective: Any,
                       costs: Mapping[str, MethodCost], *, method: str = "mask_search",
                       ylabel: str = "objective", title: str = "",
                       controls: Sequence[str] = ("fake_cam", "random")) -> None:
  """Draws the two panels (module doc) and saves them as a PNG at `path`.

  Args:
    path: the .png file.
    objective: f32[N,T], image n's objective at steps 1..T of `method`.
    costs: method -> its MethodCost, drawn in this order, top to bottom.
    method: the search whose objective is drawn (its bar is outlined).
    ylabel: what the objective is.
    title: the figure's title; "" for none.
    controls: the methods drawn grey.

  Raises:
    ValueError: an objective not finite [N, T], empty costs or a cost that is
      not a MethodCost with finite seconds >= 0 (the method is named).
  """
  values, checked = _checked(objective, costs)
  plt = plotting.pyplot()
  figure, (left, right) = plt.subplots(
      1, 2, figsize=(11.0, 4.2 + (0.3 if title else 0.0)), layout="constrained",
      gridspec_kw={"width_ratios": (3, 2)})
  steps = np.arange(1, values.shape[1] + 1)
  for curve in values:
    left.plot(steps, curve, color="C0", alpha=max(0.08, 1.0 / len(values)), linewidth=0.8)
  left.plot(steps, values.mean(axis=0), color="C0", linewidth=2.0,
            label=f"mean of {len(values)} images")
  left.set(xlabel="step", ylabel=ylabel, title=f"{method}: objective per step")
  left.legend(loc="best", fontsize="small")

  names = list(checked)
  seconds = np.array([checked[m].seconds for m in names])
  floor = seconds[seconds > 0].min() / 2 if (seconds > 0).any() else 1e-6
  colours = ["0.6" if m in controls else ("C3" if m == method else "C0") for m in names]
  positions = np.arange(len(names))[::-1]
  right.barh(positions, np.maximum(seconds, floor), color=colours,
             edgecolor=["black" if m == method else "none" for m in names])
  for y, name in zip(positions, names, strict=True):
    cost = checked[name]
    passes = "no pass" if cost.kind is None else (
        f"{cost.passes} {cost.kind} pass{'' if cost.passes == 1 else 'es'}")
    right.annotate(f" {cost.seconds:.3g} s, {passes}", (max(cost.seconds, floor), y),
                   va="center", fontsize="small")
  right.set_xscale("log")
  right.set_xlim(floor, seconds.max() * 30 if seconds.max() > floor else floor * 30)
  right.set_yticks(positions, names)
  right.set(xlabel="seconds per image (log)", title="cost per image")
  if title:
    figure.suptitle(title)
  plotting.save_figure(figure, path)
