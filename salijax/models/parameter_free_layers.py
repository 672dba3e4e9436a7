"""The layers without parameters (activations, pools) as Flax modules.

As modules they have a path in the model ("relu", "maxpool", "features_20",
"avgpool") where interception (`salijax.wrap`) reads and replaces their
output, as it does a convolution's: every torchvision module of salijax's
models is a Flax module.

`adaptive_avg_pool` is torch's `adaptive_avg_pool2d` on NHWC arrays: output
cell i of an axis of length n pooled to m cells averages the inputs
[floor(i * n / m), ceil((i + 1) * n / m)), so cells overlap when m does not
divide n and inputs repeat when n < m. The windows are rectangles, so the 2-D
pool is the 1-D pool along H followed by the 1-D pool along W, with plain
slices and means (no matmul, so no dependence on matmul precision).
"""

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax


def adaptive_bins(length: int, cells: int) -> tuple[tuple[int, int], ...]:
  """The [start, end) input range of each of `cells` output cells (torch's rule)."""
  return tuple((i * length // cells, -(-(i + 1) * length // cells)) for i in range(cells))


def _pool_axis(x: jax.Array, axis: int, cells: int) -> jax.Array:
  if x.shape[axis] == cells:
    return x
  return jnp.concatenate(
      [jnp.mean(lax.slice_in_dim(x, start, end, axis=axis), axis=axis, keepdims=True)
       for start, end in adaptive_bins(x.shape[axis], cells)], axis=axis)


def adaptive_avg_pool(x: jax.Array, output_size: tuple[int, int]) -> jax.Array:
  """f32[B,H,W,C] -> f32[B,output_size[0],output_size[1],C], as torch (module doc)."""
  return _pool_axis(_pool_axis(x, 1, output_size[0]), 2, output_size[1])


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
