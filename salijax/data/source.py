"""`Source`: a random-access dataset of images and labels, and an in-memory one.

A source is what `salijax.data.load` returns and `salijax.data.batches` reads:
`len(source)` examples, `source[i]` a dict

  image: uint8[H, W, 3]   (H, W may differ between examples)
  label: int              (in [0, num_classes))
  mask:  bool[H, W]       only where `has_mask`: the labelled object's pixels
  bbox:  f32[4]           only where `has_bbox`: the labelled object's box,
                          (ymin, xmin, ymax, xmax) normalised to [0, 1]
"""

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Source(Protocol):
  """A random-access dataset (see the module doc for the example dict)."""

  name: str
  split: str
  num_classes: int
  class_names: list[str]
  has_mask: bool
  has_bbox: bool

  def __len__(self) -> int: ...

  def __getitem__(self, index: int) -> dict[str, Any]: ...


class ArraySource:
  """A `Source` over in-memory arrays.

  Args:
    images: uint8[N, H, W, 3].
    labels: int[N], in [0, len(class_names)).
    class_names: the names of the classes.
    masks: optional bool[N, H, W].
    bboxes: optional f32[N, 4], (ymin, xmin, ymax, xmax) in [0, 1].
    name: what `name` reports.
    split: what `split` reports.
  """

  def __init__(
    self,
    images: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    *,
    masks: np.ndarray | None = None,
    bboxes: np.ndarray | None = None,
    name: str = "arrays",
    split: str = "all",
  ):
    images, labels = np.asarray(images), np.asarray(labels)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
      raise ValueError(
        f"images: expected uint8[N, H, W, 3], got {images.dtype}{list(images.shape)}"
      )
    num = len(images)
    if labels.shape != (num,) or not np.issubdtype(labels.dtype, np.integer):
      raise ValueError(f"labels: expected int[{num}], got {labels.dtype}{list(labels.shape)}")
    if num and (labels.min() < 0 or labels.max() >= len(class_names)):
      raise ValueError(
        f"labels: expected values in [0, {len(class_names)}), got [{labels.min()}, {labels.max()}]"
      )
    if masks is not None:
      masks = np.asarray(masks)
      if masks.dtype != np.bool_ or masks.shape != images.shape[:3]:
        raise ValueError(
          f"masks: expected bool{list(images.shape[:3])}, got {masks.dtype}{list(masks.shape)}"
        )
    if bboxes is not None:
      bboxes = np.asarray(bboxes, dtype=np.float32)
      if bboxes.shape != (num, 4):
        raise ValueError(f"bboxes: expected f32[{num}, 4], got {list(bboxes.shape)}")
    self.name = name
    self.split = split
    self.class_names = list(class_names)
    self.num_classes = len(self.class_names)
    self.has_mask = masks is not None
    self.has_bbox = bboxes is not None
    self._images, self._labels, self._masks, self._bboxes = images, labels, masks, bboxes

  def __len__(self) -> int:
    return len(self._images)

  def __getitem__(self, index: int) -> dict[str, Any]:
    example = {"image": self._images[index], "label": int(self._labels[index])}
    if self._masks is not None:
      example["mask"] = self._masks[index]
    if self._bboxes is not None:
      example["bbox"] = self._bboxes[index]
    return example
