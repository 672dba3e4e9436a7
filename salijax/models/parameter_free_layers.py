"""The layers without parameters (activations, pools) as Flax modules.

As modules they have a path in the model ("relu", "maxpool", "features_20",
"avgpool") where interception (`salijax.wrap`) reads and replaces their
output, as it does a convolution's: every torchvision module of salijax's
models is a Flax module.

`adaptive_avg_pool` is torch's `adaptive_avg_pool2d` on NHWC arrays: output
cell i of an axis of length n pooled to m cells averages the inputs
[floor(i * n / m), ceil((i + 1) * n / m)), so cells overlap when m does not
divide n and inputs repeat when n < m. Every output cell is one mean over its
rectangle of inputs, as torch computes it and as zennit's norm rule for the
pool reads it (`salijax.methods.lrp_transform` gives each `reduce_sum` the
rule, so the pool must not be two 1-D means): where m divides n along both
axes (VGG's 7 x 7 at 224 px, the identity included), one mean over blocks of
a reshape; otherwise a mean per cell over a slice, concatenated. Plain sums,
no matmul: no dependence on matmul precision.
"""

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp


def adaptive_bins(length: int, cells: int) -> tuple[tuple[int, int], ...]:
  """The [start, end) input range of each of `cells` output cells (torch's rule)."""
  return tuple((i * length // cells, -(-(i + 1) * length // cells)) for i in range(cells))


def adaptive_avg_pool(x: jax.Array, output_size: tuple[int, int]) -> jax.Array:
  """f32[B,H,W,C] -> f32[B,output_size[0],output_size[1],C], as torch (module doc)."""
  batch, height, width, channels = x.shape
  rows, columns = output_size
  if height % rows == 0 and width % columns == 0:
    blocks = x.reshape(batch, rows, height // rows, columns, width // columns, channels)
    return jnp.mean(blocks, axis=(2, 4))
  return jnp.concatenate([
      jnp.concatenate([jnp.mean(x[:, top:bottom, left:right], axis=(1, 2), keepdims=True)
                       for left, right in adaptive_bins(width, columns)], axis=2)
      for top, bottom in adaptive_bins(height, rows)], axis=1)


class Activation(nn.Module):
  """`fn` applied elementwise (the model's ReLU, or the guided one); any shape."""

  fn: Callable[[jax.Array], jax.Array]

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.fn(x)


class MaxPool(nn.Module):
  """torch's MaxPool2d(size, stride, padding) on f32[B,H,W,C]; padding is -inf."""

  size: int
  stride: int
  padding: int = 0

  def __call__(self, x: jax.Array) -> jax.Array:
    pad = ((self.padding, self.padding),) * 2
    return nn.max_pool(x, (self.size, self.size), strides=(self.stride, self.stride),
                       padding=pad)


class AdaptiveAvgPool(nn.Module):
  """torch's AdaptiveAvgPool2d: f32[B,H,W,C] -> f32[B,h,w,C] (module doc)."""

  output_size: tuple[int, int]

  def __call__(self, x: jax.Array) -> jax.Array:
    return adaptive_avg_pool(x, self.output_size)


class GlobalAvgPool(nn.Module):
  """The mean over H and W: f32[B,H,W,C] -> f32[B,1,1,C] (ResNet's avgpool)."""

  def __call__(self, x: jax.Array) -> jax.Array:
    return jnp.mean(x, axis=(1, 2), keepdims=True)
