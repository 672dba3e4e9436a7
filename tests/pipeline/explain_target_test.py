"""Tests of salijax.pipeline.explain_target: which class a target names among a model's."""

import collections

import numpy as np
import pytest

from salijax.pipeline import explain_target
from salijax.pipeline.model_loading import imagenet_class_names

NAMES = ("ant", "honey bee", "Bumble Bee", "cat")


def test_top1_and_topk_are_chosen_per_image():
  assert explain_target.fixed_class("top1", NAMES) is None
  assert explain_target.fixed_class("topk", NAMES) is None


def test_an_index_names_its_class():
  assert explain_target.fixed_class(3, NAMES) == 3
  assert explain_target.fixed_class(np.int64(0), NAMES) == 0


def test_a_name_is_matched_whole_and_case_insensitive():
  assert explain_target.fixed_class("bumble bee", NAMES) == 2
  assert explain_target.fixed_class(" CAT ", NAMES) == 3
  names = imagenet_class_names()
  assert explain_target.fixed_class("Tabby", names) == names.index("tabby")


def test_an_index_beyond_the_classes():
  with pytest.raises(ValueError, match=r"target: class 4 is beyond the 4 classes of m \(0 to 3\)"):
    explain_target.fixed_class(4, NAMES, "m")


def test_an_unknown_name_lists_close_matches():
  with pytest.raises(ValueError, match="no class of m is named 'bee'") as info:
    explain_target.fixed_class("bee", NAMES, "m")
  assert "close matches: 'honey bee' (1), 'Bumble Bee' (2)" in str(info.value)
  names = imagenet_class_names()
  with pytest.raises(ValueError, match=f"named 'tabbi'.*'tabby' \\({names.index('tabby')}\\)"):
    explain_target.fixed_class("tabbi", names)
  with pytest.raises(ValueError, match="named 'zzz' \\(case-insensitive\\)$"):
    explain_target.fixed_class("zzz", NAMES)


def test_a_name_of_several_classes_is_ambiguous():
  names = imagenet_class_names()
  folded = collections.Counter(name.casefold() for name in names)
  repeated = [name for name, count in folded.items() if count > 1]
  assert repeated  # ImageNet has "Cardigan" (a corgi) and "cardigan" (a sweater)
  indices = [index for index, name in enumerate(names) if name.casefold() == repeated[0]]
  with pytest.raises(ValueError, match="is ambiguous") as info:
    explain_target.fixed_class(repeated[0].upper(), names, "resnet18")
  assert all(f"({index})" in str(info.value) for index in indices)
  assert "give the class index instead" in str(info.value)
  with pytest.raises(ValueError, match="ambiguous.*'cat' \\(0\\), 'Cat' \\(1\\)"):
    explain_target.fixed_class("cAt", ("cat", "Cat"))


@pytest.mark.parametrize("target,error,message", [
    (True, TypeError, "target must be 'top1', 'topk'"),
    (1.0, TypeError, "target must be"),
    (None, TypeError, "target must be"),
    (-1, ValueError, "class index >= 0"),
    ("  ", ValueError, "empty class name"),
])
def test_bad_targets(target, error, message):
  with pytest.raises(error, match=message):
    explain_target.check_target(target)
  with pytest.raises(error, match=message):
    explain_target.fixed_class(target, NAMES)
