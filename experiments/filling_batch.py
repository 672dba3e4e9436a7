"""The batch that fills a device: enough images explained at once for `fill` images a pass.

A method's pass takes `per_pass` images of every explained image (its chunk:
RISE 256 masked images, LIME 128 samples, Grad-CAM 1), so B images make
passes of B x per_pass images. `filling_batch` picks B = max(1, fill //
per_pass at B = 1): one image for the chunked methods, `fill` images for the
one-pass methods. `fill` is what keeps the accelerator busy (256 images of
224 px on a GPU or TPU chip) or what stays small (a few on a CPU test).

    batch = filling_batch("rise", {"num_masks": 4000}, height=224, width=224,
                          channels=512, fill=256)     # 1
"""

from collections.abc import Mapping
from typing import Any

from experiments import method_speed
from salijax import validation
from salijax.methods.registry import Shapes


def filling_batch(name: str, given: Mapping[str, Any], *, height: int, width: int,
                  channels: int, fill: int) -> int:
  """B = max(1, fill // (images one pass takes per explained image, at B = 1)).

  Args:
    name: a name from `method_speed.benchmarked_methods()`.
    given: the options it runs with (the rest: its defaults).
    height, width: the image size; channels: k at the explained layer.
    fill: images per pass that fill the device.
  """
  validation.check_positive_int(fill, "fill")
  options = method_speed.resolve_options(name, given)
  per_pass = method_speed.cost(name, options, Shapes(1, height, width, channels)).per_pass
  return max(1, fill // max(1, per_pass))
