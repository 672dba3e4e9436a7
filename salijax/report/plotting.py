"""matplotlib for the report's figures: the non-interactive backend and atomic PNG files.

The figures are drawn on servers and in batch jobs, without a display, so
`pyplot()` selects matplotlib's "Agg" backend before it first imports
matplotlib.pyplot (importing salijax.report draws nothing and imports no
matplotlib). When the process has imported pyplot already (a notebook, a
script with its own backend), its backend is left alone: saving works with any
backend.

    plt = pyplot()
    figure, axes = plt.subplots()
    ...
    save_figure(figure, report_dir / "curves.png")   # PNG, 150 dpi; closes the figure
"""

import io
import os
import pathlib
import sys
from types import ModuleType
from typing import Any

from salijax import atomic_files

DPI = 150


def pyplot() -> ModuleType:
  """matplotlib.pyplot, with the "Agg" backend unless pyplot was imported before (module doc)."""
  import matplotlib  # noqa: PLC0415 - lazy: matplotlib is needed only for figures.

  if "matplotlib.pyplot" not in sys.modules:
    matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # noqa: PLC0415

  return plt


def save_figure(figure: Any, path: str | os.PathLike) -> None:
  """Saves `figure` as a PNG (150 dpi, tight bounding box) at `path`, atomically, and closes it.

  Args:
    figure: a matplotlib Figure.
    path: the file, ending in ".png"; its folder is created if missing.

  Raises:
    ValueError: a path that does not end in ".png".
  """
  path = pathlib.Path(path)
  plt = pyplot()
  try:
    if path.suffix.lower() != ".png":
      raise ValueError(f"path must name a .png file, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    atomic_files.write_bytes_atomic(path, buffer.getvalue())
  finally:
    plt.close(figure)
