"""Tests of salijax.report.plotting."""

import ast
import os
import pathlib
import subprocess
import sys
import textwrap

import PIL.Image
import pytest

from salijax.report import plotting
from salijax.report.plotting import pyplot, save_figure

PLOTTING = pathlib.Path(plotting.__file__)


def backend_in_a_fresh_process(before: str) -> str:
  """The backend of plotting.pyplot() in a new Python that first runs `before`.

  plotting.py is loaded from its file, without the salijax package (and its jax import), to
  keep the subprocess fast.
  """
  script = textwrap.dedent(f"""
      import importlib.util
      {before}
      spec = importlib.util.spec_from_file_location("plotting", {str(PLOTTING)!r})
      plotting = importlib.util.module_from_spec(spec)
      spec.loader.exec_module(plotting)
      print(plotting.pyplot().get_backend().lower())
      """)
  done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                        env={**os.environ, "MPLBACKEND": "svg"}, check=True)
  return done.stdout.split()[-1]


def test_backend_is_agg_unless_pyplot_came_first():
  assert backend_in_a_fresh_process("") == "agg"  # even where MPLBACKEND asks for another
  before = "import matplotlib; matplotlib.use('pdf'); import matplotlib.pyplot"
  assert backend_in_a_fresh_process(before) == "pdf"


def test_the_report_modules_import_matplotlib_lazily():
  for path in PLOTTING.parent.glob("*.py"):
    for node in ast.parse(path.read_text()).body:  # the module-level statements only
      names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
               else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
      assert not any(name.split(".")[0] == "matplotlib" for name in names), path.name


def small_figure(width=3.0, height=2.0):
  figure, ax = pyplot().subplots(figsize=(width, height))
  ax.plot([0, 1], [1, 0])
  return figure


def test_saves_a_png_and_closes_the_figure(tmp_path):
  plt = pyplot()
  figure = small_figure()
  path = tmp_path / "new" / "folder" / "figure.png"
  save_figure(figure, path)
  assert not plt.fignum_exists(figure.number)
  with PIL.Image.open(path) as image:
    assert image.format == "PNG"
    assert image.info["dpi"] == pytest.approx((150, 150), abs=0.5)
    width, height = image.size
  assert width > height  # a 3 x 2 inch figure, cropped to its drawing
  assert os.listdir(path.parent) == ["figure.png"]
  reference = tmp_path / "reference"
  reference.write_text("")
  assert os.stat(path).st_mode & 0o777 == os.stat(reference).st_mode & 0o777  # umask, not 0600


def test_replaces_a_file_and_keeps_it_when_saving_fails(tmp_path, monkeypatch):
  path = tmp_path / "figure.png"
  save_figure(small_figure(3.0, 2.0), path)
  save_figure(small_figure(2.0, 4.0), path)
  with PIL.Image.open(path) as image:
    assert image.size[1] > image.size[0]  # the second, tall figure
  before = path.read_bytes()
  figure = small_figure()

  def broken_savefig(f, **kwargs):
    del kwargs
    f.write(b"partial")
    raise RuntimeError("disk full")

  monkeypatch.setattr(figure, "savefig", broken_savefig)
  with pytest.raises(RuntimeError, match="disk full"):
    save_figure(figure, path)
  assert path.read_bytes() == before
  assert os.listdir(tmp_path) == ["figure.png"]
  assert not pyplot().fignum_exists(figure.number)


def test_rejects_a_path_that_is_not_png(tmp_path):
  figure = small_figure()
  with pytest.raises(ValueError, match=r"\.png"):
    save_figure(figure, tmp_path / "figure.pdf")
  assert not pyplot().fignum_exists(figure.number)
  assert not os.listdir(tmp_path)
