"""One saliency map over its image as a small PNG (bytes), for the HTML pages' galleries.

The map is min-max normalised over its image (`overlay_grid.normalized_map`: a
constant map shows as all low), coloured through `cmap` and blended over the
image with opacity `alpha`, like the report's overlay grids; an image larger
than `max_size` pixels on a side is shrunk (bilinear) to fit.

    png = overlay_png(image, saliency, cmap="jet")      # bytes of a PNG file
    html_page.data_url(png)                             # for an <img> src
"""

import io
from typing import Any

import numpy as np

from salijax import validation
from salijax.report.overlay_grid import normalized_map


def overlay_png(image: Any, saliency: Any, *, cmap: str = "jet", alpha: float = 0.5,
                max_size: int = 128) -> bytes:
  """The PNG bytes of `saliency` over `image` (module doc).

  Args:
    image: f32[H,W,3] in [0, 1].
    saliency: f32[H,W], larger = more salient, finite.
    cmap: a matplotlib colormap name.
    alpha: the map's opacity, in [0, 1].
    max_size: the largest side of the PNG in pixels, positive.

  Raises:
    ValueError: image not [H,W,3] in [0, 1]; saliency not [H,W] like it or
      non-finite; an unknown cmap; alpha outside [0, 1]; max_size not positive.
  """
  validation.check_images(np.asarray(image)[None], name="image")
  validation.check_map_batch(np.asarray(saliency)[None], name="saliency")
  image = np.asarray(image, np.float64)
  if np.shape(saliency) != image.shape[:2]:
    raise ValueError(f"saliency must have shape {image.shape[:2]} like the image, got"
                     f" {np.shape(saliency)}")
  if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
    raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
  validation.check_positive_int(max_size, "max_size")
  import matplotlib  # noqa: PLC0415 - lazy, like the figures: only for the colormap.
  from PIL import Image  # noqa: PLC0415

  if cmap not in matplotlib.colormaps:
    raise ValueError(f"cmap must be a matplotlib colormap name, got {cmap!r}")
  colours = matplotlib.colormaps[cmap](normalized_map(saliency))[..., :3]
  blended = (1 - alpha) * np.clip(image, 0.0, 1.0) + alpha * colours
  picture = Image.fromarray(np.round(blended * 255).astype(np.uint8))
  if max(picture.size) > max_size:
    scale = max_size / max(picture.size)
    picture = picture.resize((max(1, round(picture.width * scale)),
                              max(1, round(picture.height * scale))), Image.BILINEAR)
  buffer = io.BytesIO()
  picture.save(buffer, format="PNG", optimize=True)
  return buffer.getvalue()
