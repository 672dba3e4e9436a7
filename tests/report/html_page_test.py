"""Tests of salijax.report.html_page: escaping, sortable tables and gallery filters."""

import base64
import html
import math
import re

import pytest

from salijax.report import html_page
from salijax.report.html_page import Cell, GalleryCard, Table

HOSTILE = '<script>alert("x")</script> & \'q\''


def test_every_text_from_data_is_escaped():
  table = Table(HOSTILE, [HOSTILE], [[HOSTILE], [Cell(HOSTILE, 1.0, bold=True)]], [HOSTILE])
  card = GalleryCard('x.png" onerror="alert(1)', HOSTILE, {"method": HOSTILE}, [(HOSTILE,
                                                                               HOSTILE)])
  page = html_page.page_html(HOSTILE, [
      html_page.section_html(HOSTILE, html_page.table_html(table), html_page.text_html(HOSTILE),
                             html_page.figure_html(HOSTILE, HOSTILE)),
      html_page.gallery_html([card], ["method"])])
  # The only scripts are the page's own one; no attribute is broken out of.
  assert page.count("<script>") == 1 and "<script>alert" not in page
  assert 'onerror="alert' not in page
  assert html.escape(HOSTILE, quote=True) in page


def test_data_url_round_trips():
  payload = bytes(range(256))
  url = html_page.data_url(payload)
  assert url.startswith("data:image/png;base64,")
  assert base64.b64decode(url.split(",", 1)[1]) == payload
  with pytest.raises(TypeError, match="data"):
    html_page.data_url("text")


def test_table_cells_carry_their_sort_keys():
  table = Table("t", ["method", "auc"], [["a", Cell("0.5", 0.5)], ["b", Cell("–", math.nan)]])
  text = html_page.table_html(table)
  assert 'class="sortable"' in text
  assert re.findall(r'data-sort="([^"]*)"', text) == ["0.5", ""]
  with pytest.raises(ValueError, match="row 0 has 1 cells for 2 header cells"):
    html_page.table_html(Table("t", ["a", "b"], [["x"]]))
  with pytest.raises(TypeError, match="Cell or a str"):
    html_page.table_html(Table("t", ["a"], [[1.0]]))


def test_gallery_filters_list_every_value_once_in_card_order():
  cards = [GalleryCard("a.png", "c", {"model": model, "method": method})
           for model in ("vgg", "resnet") for method in ("rise", "gradcam", "rise")]
  text = html_page.gallery_html(cards, ["model", "method"])
  for facet, values in (("model", ["vgg", "resnet"]), ("method", ["rise", "gradcam"])):
    select = re.search(rf'<select data-facet="{facet}">(.*?)</select>', text).group(1)
    assert re.findall(r'<option value="([^"]*)">', select) == ["", *values]
  assert len(re.findall(r'<figure class="card" data-model="[^"]+" data-method="[^"]+"',
                        text)) == len(cards)


def test_gallery_refuses_bad_facets_and_cards():
  card = GalleryCard("a.png", "c", {"model": "m"})
  with pytest.raises(ValueError, match="no value for the facets"):
    html_page.gallery_html([card], ["model", "method"])
  with pytest.raises(ValueError, match="facets must be"):
    html_page.gallery_html([card], ["Model name"])
  with pytest.raises(TypeError, match="cards\\[0\\]"):
    html_page.gallery_html(["a.png"], ["model"])
  with pytest.raises(TypeError, match="parts"):
    html_page.page_html("t", "<p>x</p>")


def test_navigation_links_name_the_sections():
  sections = [html_page.section_html(heading, "<p>x</p>") for heading in ("Models", "Maps & more")]
  links = re.findall(r'<a href="#([^"]+)">', html_page.navigation_html(["Models", "Maps & more"]))
  assert links == ["models", "maps-more"]
  assert [re.search(r'<section id="([^"]+)">', s).group(1) for s in sections] == links
  with pytest.raises(ValueError, match="level"):
    html_page.section_html("x", level=1)
