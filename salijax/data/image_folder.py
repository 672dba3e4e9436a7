"""Reads a folder of images, one subfolder per class, as a `Source`.

Layout rule, for `load("folder:PATH", split)`:

- if PATH has a subfolder named `split`, the split is PATH/<split>/<class>/...;
- else, if PATH has a subfolder named like a split (train, test, val,
  validation, valid, dev), the split is missing: an error lists those present;
- else PATH itself is the split, whatever its name: PATH/<class>/... (so
  "train" and "test" are then the same images).

Class names are the sorted names of the class subfolders, taken over all split
folders (so that a label means the same class in every split). Images are the
files with extension jpg, jpeg, png, bmp or webp (any case) anywhere below a
class folder, in sorted path order; other files are ignored. They are read with
PIL when accessed, EXIF-rotated and converted to RGB (grey-scale repeated, alpha
dropped); a file PIL cannot read raises a ValueError naming it.
"""

import os
from typing import Any

import numpy as np
from PIL import Image, ImageOps

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
SPLIT_NAMES = ("train", "test", "val", "validation", "valid", "dev")


class ImageFolderSource:
  """A `Source` over image files (see the module doc); `paths[i]` is example i's file."""

  def __init__(
    self, paths: list[str], labels: list[int], class_names: list[str], *, name: str, split: str
  ):
    self.name = name
    self.split = split
    self.class_names = class_names
    self.num_classes = len(class_names)
    self.has_mask = False
    self.has_bbox = False
    self.paths = paths
    self._labels = labels

  def __len__(self) -> int:
    return len(self.paths)

  def __getitem__(self, index: int) -> dict[str, Any]:
    path = self.paths[index]
    try:
      with Image.open(path) as image:
        image = ImageOps.exif_transpose(image).convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as error:
      raise ValueError(f"cannot read image file {path}: {error}") from error
    return {"image": np.asarray(image, dtype=np.uint8), "label": self._labels[index]}


def _subfolders(path: str) -> list[str]:
  return sorted(e.name for e in os.scandir(path) if e.is_dir() and not e.name.startswith("."))


def _image_files(folder: str) -> list[str]:
  files = []
  for root, dirs, names in os.walk(folder):
    dirs[:] = [d for d in dirs if not d.startswith(".")]
    files += [
      os.path.join(root, n)
      for n in names
      if n.lower().endswith(IMAGE_EXTENSIONS) and not n.startswith(".")
    ]
  return sorted(files)


def load_image_folder(path: str, split: str, *, name: str | None = None) -> ImageFolderSource:
  """Lists the images of `split` of the folder `path` (see the module doc).

  Args:
    path: the dataset folder.
    split: the split name.
    name: what `Source.name` reports; default "folder:<path>".

  Returns:
    The source (images are read when accessed).
  """
  name = name or f"folder:{path}"
  if not os.path.isdir(path):
    raise ValueError(f"name: expected 'folder:PATH' with PATH an existing folder, got {name!r}")
  subfolders = _subfolders(path)
  split_folders = [s for s in subfolders if s in SPLIT_NAMES]
  if split in subfolders:
    split_dir = os.path.join(path, split)
    class_sets = [_subfolders(os.path.join(path, s)) for s in {*split_folders, split}]
    class_names = sorted(set().union(*class_sets))
  elif split_folders:
    raise ValueError(
      f"split: expected one of the split folders {split_folders} of {path}, got {split!r}"
    )
  else:
    split_dir = path
    class_names = subfolders
  present = _subfolders(split_dir)
  if not present:
    raise ValueError(
      f"split {split!r} of {name!r}: expected one subfolder per class in {split_dir}, found none"
    )
  paths, labels = [], []
  for class_name in present:
    files = _image_files(os.path.join(split_dir, class_name))
    if not files:
      raise ValueError(
        f"split {split!r} of {name!r}: class folder {os.path.join(split_dir, class_name)}"
        f" has no image files ({', '.join(IMAGE_EXTENSIONS)})"
      )
    paths += files
    labels += [class_names.index(class_name)] * len(files)
  return ImageFolderSource(paths, labels, class_names, name=name, split=split)
