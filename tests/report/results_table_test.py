"""Tests of salijax.report.results_table."""

import csv
import json
import math

import numpy as np
import pytest

from salijax.report.results_table import COLUMNS, read_results, write_results


def make_rows():
  """Rows with every column type, awkward strings and a NaN value."""
  rows = []
  for index, (method, metric, value) in enumerate([
      ("gradcam", "insertion_auc", 0.1 + 0.2),
      ("rise", "deletion_auc", 1e-300),
      ("lime, v2", "average_drop", -12.5),
      ('say "hi"', "pointing_game", 1.0),
      ("sidu", "energy_pointing_game", math.nan),
      ("line\nbreak", "mine", 3.0),
  ]):
    rows.append({"model": "resnet18", "mode": "finetune", "dataset": "synthetic_shapes",
                 "split": "test", "image_id": index if index % 2 else f"img_{index:03d}",
                 "label": index % 3, "predicted": (index + 1) % 3,
                 "label_mode": ("ground_truth", "least_likely")[index % 2],
                 "explained": (index + 2) % 3, "perturbation": ("none", "fgsm0.03")[index % 2],
                 "method": method, "metric": metric, "value": value, "seed": 7})
  return rows


def same_rows(got, want):
  assert len(got) == len(want)
  for a, b in zip(got, want, strict=True):
    assert list(a) == list(COLUMNS)
    for column in COLUMNS:
      assert type(a[column]) is type(b[column]), column
      if isinstance(b[column], float) and math.isnan(b[column]):
        assert math.isnan(a[column])
      else:
        assert a[column] == b[column], column


def test_round_trip_keeps_values_and_types(tmp_path):
  rows = make_rows()
  write_results(rows, tmp_path / "report")
  same_rows(read_results(tmp_path / "report"), rows)


def test_csv_header_and_json_rows(tmp_path):
  rows = make_rows()
  write_results(rows, tmp_path)
  with open(tmp_path / "results.csv", newline="") as f:
    lines = list(csv.reader(f))
  assert tuple(lines[0]) == COLUMNS
  assert len(lines) == 1 + len(rows)
  loaded = json.loads((tmp_path / "results.json").read_text())  # strict JSON: no NaN token
  assert "NaN" not in (tmp_path / "results.json").read_text()
  assert len(loaded) == len(rows)
  for got, want in zip(loaded, rows, strict=True):
    assert list(got) == list(COLUMNS)
    assert got["value"] == (None if math.isnan(want["value"]) else want["value"])
    assert got["image_id"] == want["image_id"] and got["method"] == want["method"]


def test_numpy_values_become_python_values(tmp_path):
  row = dict(make_rows()[0], label=np.int32(2), predicted=np.int64(1), seed=np.uint8(3),
             value=np.float32(0.25), image_id=np.int64(12))
  write_results([row], tmp_path)
  got = read_results(tmp_path)[0]
  assert (got["label"], got["predicted"], got["seed"], got["image_id"]) == (2, 1, 3, 12)
  assert type(got["label"]) is int and type(got["image_id"]) is int
  assert got["value"] == 0.25 and type(got["value"]) is float


def test_image_ids_that_look_like_numbers(tmp_path):
  rows = [dict(make_rows()[0], image_id=image_id) for image_id in ("12", "012", "-3", "1_0")]
  write_results(rows, tmp_path)
  assert [row["image_id"] for row in read_results(tmp_path)] == [12, "012", -3, "1_0"]


def test_writes_atomically_and_replaces(tmp_path):
  write_results(make_rows(), tmp_path)
  write_results(make_rows()[:2], tmp_path)
  assert len(read_results(tmp_path)) == 2
  assert len(json.loads((tmp_path / "results.json").read_text())) == 2
  assert sorted(path.name for path in tmp_path.iterdir()) == ["results.csv", "results.json"]


def test_no_rows_writes_empty_tables(tmp_path):
  write_results([], tmp_path)
  assert read_results(tmp_path) == []
  assert json.loads((tmp_path / "results.json").read_text()) == []


def test_a_bad_row_leaves_the_previous_tables(tmp_path):
  write_results(make_rows(), tmp_path)
  before = (tmp_path / "results.csv").read_text()
  bad = make_rows()
  del bad[3]["seed"]
  with pytest.raises(ValueError, match=r"rows\[3\].*missing \['seed'\]"):
    write_results(bad, tmp_path)
  assert (tmp_path / "results.csv").read_text() == before


@pytest.mark.parametrize("change, error, pattern", [
    ({"seed": None}, TypeError, r"rows\[1\] column 'seed' must be an int"),
    ({"label": 1.0}, TypeError, r"rows\[1\] column 'label' must be an int"),
    ({"predicted": True}, TypeError, r"column 'predicted' must be an int"),
    ({"explained": 2.0}, TypeError, r"column 'explained' must be an int"),
    ({"perturbation": None}, TypeError, r"column 'perturbation' must be a str"),
    ({"value": "0.5"}, TypeError, r"column 'value' must be a real number"),
    ({"model": 18}, TypeError, r"column 'model' must be a str"),
    ({"image_id": 1.5}, TypeError, r"column 'image_id' must be an int or a str"),
    ({"extra_column": 1}, ValueError, r"rows\[1\].*extra \['extra_column'\]"),
])
def test_bad_rows_are_rejected_naming_the_column(tmp_path, change, error, pattern):
  rows = make_rows()
  rows[1] = {**rows[1], **change}
  with pytest.raises(error, match=pattern):
    write_results(rows, tmp_path)
  assert not list(tmp_path.iterdir())


def test_a_row_that_is_not_a_mapping_is_rejected(tmp_path):
  with pytest.raises(TypeError, match=r"rows\[0\] must be a mapping"):
    write_results([list(make_rows()[0].values())], tmp_path)


def test_read_rejects_a_foreign_csv(tmp_path):
  (tmp_path / "results.csv").write_text("a,b\n1,2\n")
  with pytest.raises(ValueError, match="header"):
    read_results(tmp_path)
  write_results(make_rows(), tmp_path)
  text = (tmp_path / "results.csv").read_text().splitlines()
  (tmp_path / "results.csv").write_text("\n".join([text[0], text[1].replace(",7", ",x")]) + "\n")
  with pytest.raises(ValueError, match="line 2"):
    read_results(tmp_path)
