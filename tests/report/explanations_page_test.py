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


TABBY, TIGER_CAT = PREDICTIONS["resnet18"]
EGYPTIAN_CAT = PREDICTIONS["vgg11"][0]


@pytest.mark.parametrize(("target", "explained", "chosen_by"), [
    ("top1", {"resnet18": [TABBY], "vgg11": [EGYPTIAN_CAT]},
     ["--target=top1: its most probable class"] * 2),
    ("topk", PREDICTIONS, ["--target=topk: its top-1 class", "--target=topk: its top-2 class",
                           "--target=topk: its top-1 class"]),
    (282, {"resnet18": [TIGER_CAT]}, ["--target=282: a class index"]),
    ("Tiger <cat>", {"resnet18": [TIGER_CAT]}, ["--target=Tiger &lt;cat&gt;: a class name"])])
def test_each_model_s_explained_class_is_named_with_how_the_target_chose_it(
    target, explained, chosen_by):
  text = explanations_page_html("Explanations", [
      ExplainedImage("cat", "cat.jpg", "cat.png", PREDICTIONS, explained=explained)],
      ["gradcam"], target=target)
  (table,) = re.findall(r'<div class="explained">(.*?)</table>', text, re.DOTALL)
  rows = [re.findall(r"<td[^>]*>([^<]*)</td>", row)
          for row in re.findall(r"<tr>(<td.*?)</tr>", table)]
  expected = [[model, f"{c['name']} ({c['class']})".replace("<", "&lt;").replace(">", "&gt;"),
               f"{100 * c['probability']:.1f} %"]
              for model, classes in explained.items() for c in classes]
  assert [row[:3] for row in rows] == expected
  assert [row[3] for row in rows] == chosen_by


def test_a_page_without_explained_classes_has_no_such_table():
  assert 'class="explained"' not in page()


def test_commentary_is_safe_markdown_only_where_given():
  text = page("The **ears** matter. <script>alert(1)</script>")
  assert text.count('class="commentary"') == 1
  assert "<strong>ears</strong>" in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
  assert text.count("<script>") == 1  # the page's own


def test_bad_images():
  with pytest.raises(TypeError, match="ExplainedImage"):
    explanations_page_html("t", ["cat.png"], ["gradcam"])
