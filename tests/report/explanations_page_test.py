"""Tests of salijax.report.explanations_page: panels, top-k tables and commentary."""

import re

import pytest

from salijax.report.explanations_page import ExplainedImage, explanations_page_html

PREDICTIONS = {"resnet18": [{"class": 281, "name": "tabby", "probability": 0.61},
                            {"class": 282, "name": "tiger <cat>", "probability": 0.2}],
               "vgg11": [{"class": 285, "name": "Egyptian cat", "probability": 0.5}]}


def page(commentary=None):
  return explanations_page_html("Explanations", [
      ExplainedImage("cat", "cat.jpg", "cat.png", PREDICTIONS, commentary),
      ExplainedImage("cat_2", "cat.jpg", "cat_2.png", PREDICTIONS)], ["gradcam", "rise"])


def test_each_image_has_its_panel_and_every_model_s_top_k():
  text = page()
  cards = re.findall(r'<figure class="card" data-image="([^"]+)"><img src="([^"]+)"', text)
  assert cards == [("cat", "cat.png"), ("cat_2", "cat_2.png")]
  assert "cat.jpg (cat_2)" in text  # a repeated file name is told apart by its key
  for card in text.split('<figure class="card"')[1:]:
    assert re.findall(r"<caption>([^<]+)</caption>", card) == ["resnet18", "vgg11"]
    assert "tiger &lt;cat&gt; (282)" in card and "61.0 %" in card
  assert re.findall(r'<option value="([^"]*)">', text) == ["", "cat", "cat_2"]


def test_commentary_is_safe_markdown_only_where_given():
  text = page("The **ears** matter. <script>alert(1)</script>")
  assert text.count('class="commentary"') == 1
  assert "<strong>ears</strong>" in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
  assert text.count("<script>") == 1  # the page's own


def test_bad_images():
  with pytest.raises(TypeError, match="ExplainedImage"):
    explanations_page_html("t", ["cat.png"], ["gradcam"])
