"""Each image's most and least likely classes: what the label modes explain, made visible.

For probabilities f32[N,K] (a classifier's softmax of N images) and the K
class names, `prediction_diagnostics` gives per image

  {"most_likely":  [{"class": c, "name": names[c], "probability": p}, ...],  k, descending
   "least_likely": [{"class": c, "name": names[c], "probability": p}, ...]}  k, ascending

with k = min(top_k, K); ties go to the lower class index in both lists. The
first "most_likely" class is the "predicted" label mode's class and the first
"least_likely" one the "least_likely" mode's. The benchmark writes them to
report/diagnostics.json (salijax.pipeline.report_stage).

    rows = prediction_diagnostics(probabilities, class_names, top_k=5)
    rows[0]["least_likely"][0]["name"]
"""

from collections.abc import Sequence
from typing import Any

import numpy as np


def _entry(probabilities: np.ndarray, names: Sequence[str], c: int) -> dict[str, Any]:
  return {"class": int(c), "name": names[c], "probability": float(probabilities[c])}


def prediction_diagnostics(probabilities: Any, class_names: Sequence[str], *,
                           top_k: int = 5) -> list[dict[str, list[dict[str, Any]]]]:
  """The k most and k least likely classes of each image (module doc).

  Args:
    probabilities: f32[N,K], finite (each row a distribution, not checked to sum to 1).
    class_names: K names.
    top_k: k >= 1 (at most K are listed).

  Returns:
    N dicts {"most_likely": [...], "least_likely": [...]}, in image order.

  Raises:
    ValueError: probabilities not [N,K] or not finite; class_names not K
      long; top_k < 1.
    TypeError: probabilities not a real array; class_names not a sequence of
      str; top_k not an int.
  """
  dtype = getattr(probabilities, "dtype", None)
  if dtype is None or not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype,
                                                                               np.integer)):
    raise TypeError(f"probabilities must be a real array f32[N,K], got "
                    f"{type(probabilities).__name__ if dtype is None else f'dtype {dtype}'}")
  values = np.asarray(probabilities, np.float64)
  if values.ndim != 2 or values.shape[1] == 0:
    raise ValueError(f"probabilities must have shape [N, K] with K >= 1, got {values.shape}")
  if not np.isfinite(values).all():
    raise ValueError("probabilities must be finite, got non-finite values")
  if isinstance(class_names, str) or not isinstance(class_names, Sequence) or not all(
      isinstance(name, str) for name in class_names):
    raise TypeError(f"class_names must be a sequence of str, got {class_names!r:.80}")
  if len(class_names) != values.shape[1]:
    raise ValueError(f"class_names must name the {values.shape[1]} classes, got"
                     f" {len(class_names)} names")
  if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)):
    raise TypeError(f"top_k must be an int, got {top_k!r}")
  if top_k < 1:
    raise ValueError(f"top_k must be >= 1, got {top_k}")
  k = min(int(top_k), values.shape[1])
  names = list(class_names)
  descending = np.argsort(-values, axis=1, kind="stable")[:, :k]
  ascending = np.argsort(values, axis=1, kind="stable")[:, :k]
  return [{"most_likely": [_entry(row, names, c) for c in top],
           "least_likely": [_entry(row, names, c) for c in bottom]}
          for row, top, bottom in zip(values, descending, ascending, strict=True)]
