"""Which class `explain_image.explain_images` explains: the target, resolved per model.

A target is one of
  "top1"   each image's most probable class (the default);
  "topk"   each of the image's top-k classes, most probable first;
  an int   that class index, for every image;
  a name   the class of that name (case-insensitive, the whole name), for every image.

    explain_target.fixed_class("Tabby", imagenet_class_names)   # 281
    explain_target.fixed_class("top1", imagenet_class_names)    # None: per image
"""

import difflib
from collections.abc import Sequence

import numpy as np

TOP1 = "top1"
TOPK = "topk"
CLOSE_MATCHES = 6  # how many similar names an unknown name's error suggests


def check_target(target: str | int) -> None:
  """TypeError/ValueError unless `target` is "top1", "topk", a class index >= 0 or a name."""
  if isinstance(target, bool) or not isinstance(target, str | int | np.integer):
    raise TypeError(f"target must be 'top1', 'topk', a class index or a class name,"
                    f" got {target!r}")
  if isinstance(target, str) and not target.strip():
    raise ValueError("target must not be an empty class name")
  if not isinstance(target, str) and target < 0:
    raise ValueError(f"target must be a class index >= 0, got {target}")


def _close_matches(name: str, class_names: Sequence[str]) -> list[str]:
  """Class names (with their index) that contain `name` or look like it, best first."""
  folded = [class_name.casefold() for class_name in class_names]
  similar = difflib.get_close_matches(name.casefold(), folded, n=CLOSE_MATCHES, cutoff=0.6)
  containing = [class_name for class_name in folded if name.casefold() in class_name]
  chosen = list(dict.fromkeys(similar + containing))[:CLOSE_MATCHES]
  return [f"{class_names[index]!r} ({index})" for index, class_name in enumerate(folded)
          if class_name in chosen]


def fixed_class(target: str | int, class_names: Sequence[str], model: str = "the model"
                ) -> int | None:
  """The class index that `target` names among `class_names`; None for "top1" and "topk".

  Args:
    target: see the module doc.
    class_names: the model's class names, one per logit.
    model: the model's name, for the errors.

  Raises:
    ValueError: an index beyond the classes; a name that no class has (the
      error lists close matches) or that several classes have (with their
      indices, to pick one by index).
    TypeError: a target of another type.
  """
  check_target(target)
  if target in (TOP1, TOPK):
    return None
  if not isinstance(target, str):
    if target >= len(class_names):
      raise ValueError(f"target: class {target} is beyond the {len(class_names)} classes of"
                       f" {model} (0 to {len(class_names) - 1})")
    return int(target)
  matches = [index for index, name in enumerate(class_names)
             if name.casefold() == target.strip().casefold()]
  if len(matches) > 1:
    listed = ", ".join(f"{class_names[index]!r} ({index})" for index in matches)
    raise ValueError(f"target: {target!r} is ambiguous among the classes of {model}: {listed};"
                     " give the class index instead")
  if not matches:
    close = _close_matches(target.strip(), class_names)
    hint = f"; close matches: {', '.join(close)}" if close else ""
    raise ValueError(f"target: no class of {model} is named {target!r} (case-insensitive)"
                     f"{hint}")
  return matches[0]
