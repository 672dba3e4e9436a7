"""A small, safe subset of Markdown as HTML, for text written beside the pages' images.

Supported: headings ("#" -> <h4>, "##" -> <h5>, deeper -> <h6>: under the
page's own headings), paragraphs (blank lines between),
bullet lists ("- ", "* ", "+ "), numbered lists ("1. "), fenced code blocks
(```), and inside text `code`, **bold** and *emphasis*. Everything else,
raw HTML and links included, shows as the text it is: every character of
the input is escaped (`html.escape`) before any tag is added, so no input
can add an element, an attribute or a script.

    markdown_html("## Why\\n\\nThe **head** is *salient*.")
    # '<h5>Why</h5>\\n<p>The <strong>head</strong> is <em>salient</em>.</p>'
"""

import html
import re

HEADING = re.compile(r"(#{1,6})\s+(.*)")
BULLET = re.compile(r"[-*+]\s+(.*)")
NUMBERED = re.compile(r"\d+[.)]\s+(.*)")
BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
EMPHASIS = re.compile(r"\*(?=\S)(.+?)(?<=\S)\*")


def inline_html(text: str) -> str:
  """One line's text, escaped, with `code`, **bold** and *emphasis* as tags."""
  parts = text.split("`")
  if len(parts) % 2 == 0:  # an unmatched backtick stays a backtick
    parts[-2:] = [parts[-2] + "`" + parts[-1]]
  out = []
  for index, part in enumerate(parts):
    escaped = html.escape(part, quote=True)
    if index % 2:
      out.append(f"<code>{escaped}</code>")
    else:
      out.append(EMPHASIS.sub(r"<em>\1</em>", BOLD.sub(r"<strong>\1</strong>", escaped)))
  return "".join(out)


def markdown_html(text: str) -> str:
  """The HTML of `text` (module doc); TypeError for a non-str."""
  if not isinstance(text, str):
    raise TypeError(f"text must be a str, got {type(text).__name__}")
  blocks: list[str] = []
  paragraph: list[str] = []
  items: list[str] = []
  list_tag = ""
  code: list[str] | None = None

  def flush() -> None:
    nonlocal list_tag
    if paragraph:
      blocks.append("<p>" + "<br>\n".join(inline_html(line) for line in paragraph) + "</p>")
      paragraph.clear()
    if items:
      blocks.append(f"<{list_tag}>" + "".join(f"<li>{item}</li>" for item in items)
                    + f"</{list_tag}>")
      items.clear()
      list_tag = ""

  for raw in text.splitlines():
    line = raw.strip()
    if code is not None:
      if line.startswith("```"):
        blocks.append("<pre><code>" + html.escape("\n".join(code)) + "</code></pre>")
        code = None
      else:
        code.append(raw)
      continue
    if line.startswith("```"):
      flush()
      code = []
      continue
    heading, bullet, numbered = HEADING.fullmatch(line), BULLET.fullmatch(line), (
        NUMBERED.fullmatch(line))
    if not line:
      flush()
    elif heading:
      flush()
      level = min(3 + len(heading.group(1)), 6)
      blocks.append(f"<h{level}>{inline_html(heading.group(2))}</h{level}>")
    elif bullet or numbered:
      tag = "ul" if bullet else "ol"
      if paragraph or (items and tag != list_tag):
        flush()
      list_tag = tag
      items.append(inline_html((bullet or numbered).group(1)))
    elif items:
      items[-1] += " " + inline_html(line)  # a continued list item
    else:
      paragraph.append(line)
  if code is not None:  # an unclosed fence runs to the end
    blocks.append("<pre><code>" + html.escape("\n".join(code)) + "</code></pre>")
  flush()
  return "\n".join(blocks)
