"""A self-contained HTML page: sortable tables, figures and a filterable gallery, no network.

The building blocks return HTML fragments (str); `page_html` wraps them into
one document with its own CSS and a small inline script (no external file,
font or script; images are data URLs or paths relative to the page). Every
text from data goes through `html.escape`.

  Sortable tables: clicking a header cell (or Enter on it) sorts the rows by
    that column, ascending, then descending; a cell sorts by its number
    (`Cell.sort_key`) when it has one, else by its text; cells without a value
    ("–") stay last. The table records the order in data-sorted-by
    ("<column> ascending|descending").
  Galleries: one select box per facet (e.g. model, method) lists "all" and the
    facet's values in the order of the cards; a card shows when it matches
    every selected value, and "N of M shown" counts them (also data-shown on
    the gallery).
  When the script has run, the <html> element has data-script="ready".

    page = page_html("Benchmark", [
        section_html("Results", table_html(Table("resnet18", ["method", "AUC"],
                                                 [[Cell("gradcam"), Cell("0.61", 0.61)]]))),
        section_html("Maps", gallery_html([GalleryCard(data_url(png), "gradcam",
                                                       {"method": "gradcam"})], ["method"]))])
"""

import base64
import dataclasses
import html
import math
import re
from collections.abc import Mapping, Sequence

FACET_NAME = re.compile(r"[a-z][a-z0-9_]*")
ALL = ""  # a select box's value for "all"

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; background: #fff; }
h1 { font-size: 1.5em; } h2 { font-size: 1.25em; margin-top: 1.6em; } h3 { font-size: 1.05em; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.9em; }
caption { text-align: left; font-weight: 600; padding: 0.3em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
td.number { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
div.scroll { overflow-x: auto; }
nav a { margin-right: 1em; }
table.sortable th { cursor: pointer; background: #f2f2f2; user-select: none; }
table.sortable th[aria-sort=ascending]::after { content: " \\25B2"; }
table.sortable th[aria-sort=descending]::after { content: " \\25BC"; }
p.note { font-size: 0.85em; color: #555; margin: 0.2em 0; }
figure.figure img { max-width: 100%; border: 1px solid #ddd; }
figure.figure { margin: 0.8em 0 1.6em; }
.filters { margin: 0.6em 0; display: flex; flex-wrap: wrap; gap: 1em; align-items: center; }
.cards { display: flex; flex-wrap: wrap; gap: 0.6em; }
figure.card { margin: 0; padding: 0.4em; border: 1px solid #ccc; border-radius: 4px;
              width: 15em; font-size: 0.8em; }
figure.card img { width: 100%; image-rendering: pixelated; display: block; }
figure.card table { margin: 0.3em 0 0; font-size: 0.95em; width: 100%; table-layout: fixed; }
figure.card td { padding: 0.1em 0.3em; overflow-wrap: anywhere; }
figure.card td.number { width: 4.5em; }
.cards.wide { flex-direction: column; }
.cards.wide figure.card { width: auto; font-size: 0.95em; }
.cards.wide figure.card img { width: auto; max-width: 100%; image-rendering: auto; }
.cards.wide figure.card figcaption { font-weight: 600; font-size: 1.1em; margin: 0.3em 0; }
.cards.wide figure.card table { width: auto; table-layout: auto; margin-right: 1.2em; }
.cards.wide figure.card div.scroll { display: inline-block; vertical-align: top; }
pre.text { white-space: pre-wrap; background: #f7f7f7; padding: 0.6em; }
"""

SCRIPT = """
(function () {
  "use strict";
  function sortValue(cell) {
    var key = cell.getAttribute("data-sort");
    if (key === null) { return {missing: false, number: NaN, text: cell.textContent.trim()}; }
    if (key === "") { return {missing: true, number: NaN, text: ""}; }
    return {missing: false, number: parseFloat(key), text: key};
  }
  function compare(a, b) {
    if (!isNaN(a.number) && !isNaN(b.number)) { return a.number - b.number; }
    return a.text.localeCompare(b.text, undefined, {numeric: true});
  }
  function sortTable(table, column, header) {
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (r1, r2) {
      var a = sortValue(r1.cells[column]), b = sortValue(r2.cells[column]);
      if (a.missing || b.missing) { return (a.missing ? 1 : 0) - (b.missing ? 1 : 0); }
      return ascending ? compare(a, b) : compare(b, a);
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) {
      cell.setAttribute("aria-sort", "none");
    });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    table.setAttribute("data-sorted-by", column + (ascending ? " ascending" : " descending"));
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, column) {
      header.tabIndex = 0;
      header.setAttribute("aria-sort", "none");
      header.addEventListener("click", function () { sortTable(table, column, header); });
      header.addEventListener("keydown", function (event) {
        if (event.key === "Enter") { sortTable(table, column, header); }
      });
    });
  });
  document.querySelectorAll("div.gallery").forEach(function (gallery) {
    var selects = gallery.querySelectorAll("select[data-facet]");
    var cards = gallery.querySelectorAll("figure.card");
    var count = gallery.querySelector(".count");
    function apply() {
      var shown = 0;
      cards.forEach(function (card) {
        var match = Array.prototype.every.call(selects, function (select) {
          return select.value === "" ||
              card.getAttribute("data-" + select.getAttribute("data-facet")) === select.value;
        });
        card.hidden = !match;
        shown += match ? 1 : 0;
      });
      count.textContent = shown + " of " + cards.length + " shown";
      gallery.setAttribute("data-shown", String(shown));
    }
    selects.forEach(function (select) { select.addEventListener("change", apply); });
    apply();
  });
  document.documentElement.setAttribute("data-script", "ready");
})();
"""


@dataclasses.dataclass(frozen=True)
class Cell:
  """One table cell: its text, the number it sorts by (None: its text; NaN: no value, last)."""

  text: str
  sort_key: float | None = None
  bold: bool = False


@dataclasses.dataclass(frozen=True)
class Table:
  """A sortable table: a caption, header texts and rows of cells (a str is Cell(str))."""

  caption: str
  header: Sequence[str]
  rows: Sequence[Sequence[Cell | str]]
  notes: Sequence[str] = ()  # lines under the table (legend)


@dataclasses.dataclass(frozen=True)
class GalleryCard:
  """One picture of a gallery: its source, caption lines, facet values and a value table."""

  src: str  # a data URL (`data_url`) or a path relative to the page
  caption: str  # lines separated by "\n"
  facets: Mapping[str, str]  # facet name -> this card's value (every facet of the gallery)
  values: Sequence[tuple[str, str]] = ()  # (name, value text) rows under the picture
  body: str = ""  # an HTML fragment under them (built by these functions, never raw data)


def escape(text: object) -> str:
  """str(text) safe inside HTML text and quoted attributes."""
  return html.escape(str(text), quote=True)


def data_url(data: bytes, mime: str = "image/png") -> str:
  """A data URL of `data` (base64), usable as an <img> src without any file."""
  if not isinstance(data, bytes):
    raise TypeError(f"data must be bytes, got {type(data).__name__}")
  return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _cell_html(cell: Cell | str) -> str:
  if isinstance(cell, str):
    cell = Cell(cell)
  if not isinstance(cell, Cell):
    raise TypeError(f"a table cell must be a Cell or a str, got {type(cell).__name__}")
  text = escape(cell.text)
  if cell.bold:
    text = f"<strong>{text}</strong>"
  if cell.sort_key is None:
    return f"<td>{text}</td>"
  key = "" if math.isnan(cell.sort_key) else repr(float(cell.sort_key))
  return f'<td class="number" data-sort="{key}">{text}</td>'


def table_html(table: Table) -> str:
  """A <table class="sortable"> of `table` (module doc); ValueError on a row of another width."""
  width = len(table.header)
  for index, row in enumerate(table.rows):
    if len(row) != width:
      raise ValueError(f"table {table.caption!r}: row {index} has {len(row)} cells for"
                       f" {width} header cells")
  head = "".join(f"<th>{escape(text)}</th>" for text in table.header)
  body = "\n".join("<tr>" + "".join(_cell_html(cell) for cell in row) + "</tr>"
                   for row in table.rows)
  notes = "".join(f'\n<p class="note">{escape(line)}</p>' for line in table.notes)
  return (f'<div class="scroll"><table class="sortable">\n<caption>{escape(table.caption)}'
          f"</caption>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"
          f"</div>{notes}")


def figure_html(src: str, caption: str) -> str:
  """A figure: the image at `src` (a relative path or a data URL) with its caption."""
  return (f'<figure class="figure"><img src="{escape(src)}" alt="{escape(caption)}">'
          f"<figcaption>{escape(caption)}</figcaption></figure>")


def text_html(text: str) -> str:
  """A paragraph of plain text."""
  return f"<p>{escape(text)}</p>"


def section_id(heading: str) -> str:
  """The id of a section: its heading in lower case, runs of other characters as "-"."""
  return re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-") or "section"


def section_html(heading: str, *parts: str, level: int = 2) -> str:
  """A <section id=`section_id(heading)`> with an <h{level}> heading over HTML fragments
  `parts`."""
  if level not in (2, 3, 4):
    raise ValueError(f"level must be 2, 3 or 4, got {level!r}")
  inner = "\n".join(parts)
  return (f'<section id="{section_id(heading)}">\n<h{level}>{escape(heading)}</h{level}>\n'
          f"{inner}\n</section>")


def navigation_html(headings: Sequence[str]) -> str:
  """Links to the sections of these headings (`section_id`)."""
  links = "".join(f'<a href="#{section_id(h)}">{escape(h)}</a>' for h in headings)
  return f"<nav>{links}</nav>"


def _check_facets(facets: Sequence[str]) -> tuple[str, ...]:
  if isinstance(facets, str) or not all(isinstance(f, str) and FACET_NAME.fullmatch(f)
                                        for f in facets):
    raise ValueError(f"facets must be a sequence of names matching {FACET_NAME.pattern},"
                     f" got {facets!r}")
  return tuple(facets)


def gallery_html(cards: Sequence[GalleryCard], facets: Sequence[str], *,
                 wide: bool = False) -> str:
  """A filterable gallery (module doc): a select box per facet, then the cards (`wide`: as
  wide as the page, one under the other, instead of small ones side by side).

  Raises:
    ValueError: a facet name outside [a-z][a-z0-9_]*, or a card without a
      value for every facet (its index is named).
    TypeError: a card that is not a GalleryCard.
  """
  facets = _check_facets(facets)
  for index, card in enumerate(cards):
    if not isinstance(card, GalleryCard):
      raise TypeError(f"cards[{index}] must be a GalleryCard, got {type(card).__name__}")
    missing = [facet for facet in facets if facet not in card.facets]
    if missing:
      raise ValueError(f"cards[{index}] has no value for the facets {missing}")
  selects = []
  for facet in facets:
    values = dict.fromkeys(str(card.facets[facet]) for card in cards)
    options = "".join(f'<option value="{escape(value)}">{escape(value)}</option>'
                      for value in values)
    label = facet.replace("_", " ")
    selects.append(f'<label>{escape(label)} <select data-facet="{facet}">'
                   f'<option value="{ALL}">all</option>{options}</select></label>')
  figures = []
  for card in cards:
    attributes = "".join(f' data-{facet}="{escape(card.facets[facet])}"' for facet in facets)
    caption = "<br>".join(escape(line) for line in card.caption.split("\n"))
    values = "".join(f"<tr><td>{escape(name)}</td><td class=\"number\">{escape(value)}</td></tr>"
                     for name, value in card.values)
    table = f"<table>{values}</table>" if values else ""
    figures.append(f'<figure class="card"{attributes}><img src="{escape(card.src)}"'
                   f' alt="{escape(card.caption)}"><figcaption>{caption}</figcaption>'
                   f"{table}{card.body}</figure>")
  cards_html = "\n".join(figures)
  return (f'<div class="gallery">\n<div class="filters">{"".join(selects)}'
          f'<span class="count">{len(cards)} shown</span></div>\n'
          f'<div class="cards{" wide" if wide else ""}">\n{cards_html}\n</div>\n</div>')


def page_html(title: str, parts: Sequence[str]) -> str:
  """The whole document: <h1>title</h1>, the HTML fragments `parts`, the CSS and the script."""
  if isinstance(parts, str):
    raise TypeError("parts must be a sequence of HTML fragments, not one str")
  body = "\n".join(parts)
  return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
          f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
          f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
          f"<h1>{escape(title)}</h1>\n{body}\n<script>{SCRIPT}</script>\n</body>\n</html>\n")
