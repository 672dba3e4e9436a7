"""explanations/index.html: every explained image's panel, top-k per model and commentary.

One card per image (`html_page.gallery_html`, filterable by image key): the panel
PNG (`salijax.report.explanation_panel`, by its path relative to the page),
the classes each model's maps explain (name, index, probability and how the
target chose them: `target_text`), each model's top-k classes as a sortable
table, and the image's commentary, Markdown shown through `markdown_html` (a
safe subset: every character is escaped), when there is one.

    tabby = {"class": 281, "name": "tabby", "probability": 0.61}
    page = explanations_page_html("Explanations", [
        ExplainedImage("cat", "cat.jpg", "cat.png", {"resnet18": [tabby, ...]},
                       explained={"resnet18": [tabby]},
                       commentary="The **head** is salient.")], methods=["gradcam"],
        target="top1")
"""

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from salijax.report.html_page import (
    Cell,
    GalleryCard,
    Table,
    gallery_html,
    page_html,
    section_html,
    table_html,
    text_html,
)
from salijax.report.markdown_html import markdown_html


@dataclasses.dataclass(frozen=True)
class ExplainedImage:
  """One image of the page."""

  key: str  # a name unique on the page (the panel's stem), the filter's value
  name: str  # the image file's name, the card's title
  panel: str  # the panel's path relative to the page (or a data URL)
  # model name -> top-k [{"class": int, "name": str, "probability": float}], most probable first
  predictions: Mapping[str, Sequence[Mapping[str, Any]]]
  commentary: str | None = None  # Markdown, or None
  # model name -> the classes its maps explain, entries like `predictions`' (None: not known)
  explained: Mapping[str, Sequence[Mapping[str, Any]]] | None = None


def target_text(target: str | int, rank: int = 1) -> str:
  """How `target` (`salijax.pipeline.explain_target`) chose an explained class, e.g.
  "--target=topk: its top-2 class" or "--target=281: a class index"."""
  if target == "top1":
    return "--target=top1: its most probable class"
  if target == "topk":
    return f"--target=topk: its top-{rank} class"
  kind = "a class name" if isinstance(target, str) else "a class index"
  return f"--target={target}: {kind}"


def explained_table(explained: Mapping[str, Sequence[Mapping[str, Any]]],
                    target: str | int) -> Table:
  """Each model's explained classes: class (name and index), probability in % and how
  `target` chose it."""
  return Table("classes explained by the maps", ["model", "class", "probability", "chosen by"], [
      [model, f"{c['name']} ({c['class']})",
       Cell(f"{100 * float(c['probability']):.1f} %", float(c["probability"])),
       target_text(target, rank)]
      for model, classes in explained.items() for rank, c in enumerate(classes, start=1)])


def top_k_table(model: str, ranked: Sequence[Mapping[str, Any]]) -> Table:
  """One model's top-k: rank, class (name and index) and probability in %."""
  return Table(model, ["rank", "class", "probability"], [
      [Cell(str(rank), float(rank)), f"{c['name']} ({c['class']})",
       Cell(f"{100 * float(c['probability']):.1f} %", float(c["probability"]))]
      for rank, c in enumerate(ranked, start=1)])


def image_card(image: ExplainedImage, target: str | int = "top1") -> GalleryCard:
  """The card of one image (module doc); `target` chose its explained classes."""
  if not isinstance(image, ExplainedImage):
    raise TypeError(f"images must hold ExplainedImage values, got {type(image).__name__}")
  tables = "\n".join(table_html(top_k_table(model, ranked))
                     for model, ranked in image.predictions.items())
  parts = [f'<div class="top-k">{tables}</div>']
  if image.explained is not None:
    parts.insert(0, f'<div class="explained">'
                    f"{table_html(explained_table(image.explained, target))}</div>")
  if image.commentary is not None:
    parts.append(f'<div class="commentary">{markdown_html(image.commentary)}</div>')
  title = image.name if image.name.rsplit(".", 1)[0] == image.key else (
      f"{image.name} ({image.key})")
  return GalleryCard(image.panel, title, {"image": image.key}, body="\n".join(parts))


def explanations_page_html(title: str, images: Sequence[ExplainedImage],
                           methods: Sequence[str], target: str | int = "top1") -> str:
  """The whole page (module doc); `methods` are named in its introduction, `target` is
  explain_images' (it chose the explained classes).

  Raises:
    TypeError: an image that is not an ExplainedImage.
  """
  cards = [image_card(image, target) for image in images]
  models = list(dict.fromkeys(model for image in images for model in image.predictions))
  chosen = {"top1": "each model's most probable class",
            "topk": "each of each model's top classes"}.get(target, f"class {target!r}")
  intro = (f"{len(images)} image{'' if len(images) == 1 else 's'}, explained by"
           f" {', '.join(models)} with {', '.join(methods)} ({chosen}). Each"
           " panel: the models side by side, the image as the model saw it, then one map per"
           " method. predictions.json beside this page holds every number.")
  return page_html(title, [text_html(intro), section_html(
      "Images", gallery_html(cards, ["image"], wide=True))])
