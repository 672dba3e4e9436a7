"""explanations/index.html: the page of an `explain_image` folder, for a browser.

From out_dir/predictions.json (`explain_image.explain_images`) and the files
beside it: each image's panel <stem>.png (by relative path), the classes each
model explained and how the target chose them, each model's top-k, and the
commentary <stem>.commentary.md when that file exists
(`salijax.report.explanations_page`). `explain_images` writes the page;
write it again after adding commentary files:

    explain_image_page.write_page("explanations")
"""

import json
import os
import pathlib

from salijax import atomic_files
from salijax.report.explanations_page import ExplainedImage, explanations_page_html

PAGE_NAME = "index.html"
PREDICTIONS_FILE = "predictions.json"  # written by explain_image.explain_images
COMMENTARY_SUFFIX = ".commentary.md"


def commentary_path(out_dir: str | os.PathLike, stem: str) -> pathlib.Path:
  """out_dir/<stem>.commentary.md, the commentary of the image whose panel is <stem>.png."""
  return pathlib.Path(out_dir) / f"{stem}{COMMENTARY_SUFFIX}"


def write_page(out_dir: str | os.PathLike, title: str = "salijax explanations") -> pathlib.Path:
  """Writes out_dir/index.html (module doc), atomically; returns its path.

  Raises:
    FileNotFoundError: no predictions.json in out_dir.
    ValueError: a predictions.json that is not an explain_images summary.
  """
  out_dir = pathlib.Path(out_dir)
  summary = json.loads((out_dir / PREDICTIONS_FILE).read_text())
  if not isinstance(summary, dict) or not {"images", "methods"} <= set(summary):
    raise ValueError(f"{out_dir / PREDICTIONS_FILE} is not an explain_images summary (needs"
                     " 'images' and 'methods')")
  images = []
  for record in summary["images"]:
    stem = record["stem"]
    commentary = commentary_path(out_dir, stem)
    images.append(ExplainedImage(
        stem, pathlib.Path(record["image"]).name, pathlib.Path(record["panel"]).name,
        record["predictions"],
        commentary.read_text() if commentary.is_file() else None,
        explained=record.get("explained")))  # None in folders written before --target
  path = out_dir / PAGE_NAME
  atomic_files.write_text_atomic(path, explanations_page_html(
      title, images, summary["methods"], target=summary.get("target", "top1")))
  return path
