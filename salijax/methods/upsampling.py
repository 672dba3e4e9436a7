"""Bilinear upsampling of saliency maps and masks to image resolution.

Convention (half-pixel centres, as `jax.image.resize`, skimage `resize(order=1)`,
OpenCV `INTER_LINEAR` and torch `interpolate(align_corners=False)`): output pixel
y of H samples the input at y_in = (y + 0.5) * h / H - 0.5, with linear
interpolation between the two nearest input pixels; positions outside
[0, h - 1] take the edge value. The same holds along the width.
"""

import jax
import jax.numpy as jnp


def upsample_bilinear(maps: jax.Array, height: int, width: int) -> jax.Array:
  """f32[..., h, w] -> f32[..., height, width], bilinear with half-pixel centres.

  Meant for height >= h and width >= w; shrinking a map is antialiased
  (`jax.image.resize`'s default), which no method here relies on.
  """
  maps = jnp.asarray(maps, jnp.float32)
  shape = maps.shape[:-2] + (height, width)
  return jax.image.resize(maps, shape, method="bilinear")
