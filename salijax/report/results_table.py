"""The benchmark's results in long format: one row per value of one image.

A row is (model, mode, image, label mode, perturbation, method, metric):

  out_dir/results.csv    header = COLUMNS, one line per row
  out_dir/results.json   the same rows as a JSON list of objects, one per line

`label` is the image's ground-truth class, `predicted` the class predicted on
the clean image, `label_mode` which class the maps explain ("ground_truth",
"predicted" or "least_likely") and `explained` that class; `perturbation` is
"none" for the clean image, else the perturbation whose image the maps
explain and the metrics score (e.g. "rotate45", "fgsm0.03").

Column types: `label`, `predicted`, `explained` and `seed` are int; `value` is float
(NaN allowed; results.json writes a non-finite value as null, so that it stays
standard JSON); `image_id` is an int or a str (a str that is an int's decimal
form, like "12" but not "012", reads back as that int); the other columns are
str. Both files are written atomically (temporary file, then rename), so a
killed run leaves the previous complete tables.

    write_results(rows, workdir / "report")
    rows = read_results(workdir / "report")   # the same rows, types included

Load results.csv with pandas (`pd.read_csv`) for analyses of your own.
"""

import csv
import io
import json
import math
import numbers
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

from salijax import atomic_files

COLUMNS = ("model", "mode", "dataset", "split", "image_id", "label", "predicted", "label_mode",
           "explained", "perturbation", "method", "metric", "value", "seed")
INT_COLUMNS = ("label", "predicted", "explained", "seed")
CSV_NAME = "results.csv"
JSON_NAME = "results.json"


def _checked_row(index: int, row: Any) -> dict[str, Any]:
  """Row `index` as a dict in COLUMNS order with plain Python values, or ValueError/TypeError."""
  if not isinstance(row, Mapping):
    raise TypeError(f"rows[{index}] must be a mapping with the columns {list(COLUMNS)}, got"
                    f" {type(row).__name__}")
  missing = [column for column in COLUMNS if column not in row]
  extra = [str(column) for column in row if column not in COLUMNS]
  if missing or extra:
    raise ValueError(f"rows[{index}] must have exactly the columns {list(COLUMNS)}: missing"
                     f" {missing}, extra {extra}")
  checked = {}
  for column in COLUMNS:
    value = row[column]
    integral = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if column == "value":
      ok, kind, convert = isinstance(value, numbers.Real), "a real number", float
    elif column in INT_COLUMNS:
      ok, kind, convert = integral, "an int", int
    elif column == "image_id":
      ok, kind, convert = integral or isinstance(value, str), "an int or a str", (
          int if integral else str)
    else:
      ok, kind, convert = isinstance(value, str), "a str", str
    if not ok:
      raise TypeError(f"rows[{index}] column {column!r} must be {kind}, got {value!r}"
                      f" ({type(value).__name__})")
    checked[column] = convert(value)
  return checked


def _json_line(row: dict[str, Any]) -> str:
  value = row["value"]
  return json.dumps({**row, "value": value if math.isfinite(value) else None})


def write_results(rows: Sequence[Mapping[str, Any]], out_dir: str | os.PathLike) -> None:
  """Writes out_dir/results.csv and out_dir/results.json (module doc), atomically.

  Args:
    rows: mappings with exactly the keys `COLUMNS` (module doc for the types).
    out_dir: the folder; created if missing.

  Raises:
    ValueError: a row with a missing or extra column (the row index and the
      columns are named).
    TypeError: a row that is not a mapping, or a value of the wrong type (the
      row index and the column are named).
  """
  checked = [_checked_row(index, row) for index, row in enumerate(rows)]
  text = io.StringIO()
  writer = csv.writer(text, lineterminator="\n")
  writer.writerow(COLUMNS)
  writer.writerows([row[column] for column in COLUMNS] for row in checked)
  out_dir = pathlib.Path(out_dir)
  atomic_files.write_text_atomic(out_dir / CSV_NAME, text.getvalue())
  lines = ",\n".join(_json_line(row) for row in checked)
  atomic_files.write_text_atomic(out_dir / JSON_NAME, f"[\n{lines}\n]\n" if lines else "[]\n")


def _parsed(column: str, cell: str) -> Any:
  """A results.csv cell of `column` as its Python type (module doc)."""
  if column == "value":
    return float(cell)
  if column in INT_COLUMNS:
    return int(cell)
  if column == "image_id":
    try:
      number = int(cell)
    except ValueError:
      return cell
    return number if str(number) == cell else cell
  return cell


def read_results(out_dir: str | os.PathLike) -> list[dict[str, Any]]:
  """The rows of out_dir/results.csv with their types back (module doc).

  Raises:
    FileNotFoundError: no results.csv in out_dir.
    ValueError: a header other than `COLUMNS`, or a line with a cell that does
      not parse as its column's type (the line number is named).
  """
  path = pathlib.Path(out_dir) / CSV_NAME
  with open(path, newline="") as f:
    reader = csv.reader(f)
    header = tuple(next(reader, ()))
    if header != COLUMNS:
      raise ValueError(f"{path}: expected the header {list(COLUMNS)}, got {list(header)}")
    rows = []
    for line_number, cells in enumerate(reader, start=2):
      if len(cells) != len(COLUMNS):
        raise ValueError(f"{path} line {line_number}: expected {len(COLUMNS)} cells, got"
                         f" {len(cells)}")
      try:
        rows.append({column: _parsed(column, cell)
                     for column, cell in zip(COLUMNS, cells, strict=True)})
      except ValueError as error:
        raise ValueError(f"{path} line {line_number}: {error}") from error
  return rows
