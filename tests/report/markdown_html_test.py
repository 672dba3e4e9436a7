"""Tests of salijax.report.markdown_html: the supported subset, and that nothing unsafe passes."""

import pytest

from salijax.report.markdown_html import markdown_html


def test_supported_blocks_and_inline_markup():
  text = ("# Title\n\nThe **head** is *salient*, see `gradcam`.\nSecond line.\n\n"
          "- one\n- two\n\n1. first\n2. second\n\n```\nx < y\n```\n### Deep")
  assert markdown_html(text).split("\n") == [
      "<h4>Title</h4>",
      "<p>The <strong>head</strong> is <em>salient</em>, see <code>gradcam</code>.<br>",
      "Second line.</p>",
      "<ul><li>one</li><li>two</li></ul>",
      "<ol><li>first</li><li>second</li></ol>",
      "<pre><code>x &lt; y</code></pre>",
      "<h6>Deep</h6>"]


@pytest.mark.parametrize("text", [
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "[a](javascript:alert(1))",
    "`<b>`", "**<i>x</i>**", "```\n</pre><script>x</script>\n```"])
def test_markup_in_the_text_stays_text(text):
  result = markdown_html(text)
  assert "<script" not in result and "<img" not in result and "<a " not in result
  assert "<i>" not in result and "<b>" not in result


def test_unmatched_markers_stay_as_typed():
  assert markdown_html("a * b ` c") == "<p>a * b ` c</p>"
  with pytest.raises(TypeError, match="text must be a str"):
    markdown_html(None)
